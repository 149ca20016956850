//! `POST /chat`'s body, as any client may send it: parsed and validated, then classified and answered by the
//! builtin model. A body is either a request or a 4xx naming the field at fault; never a panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use chatbot::chat::{ChatRequest, MAX_MESSAGE_BYTES};
use chatbot::model::builtin::Builtin;
use chatbot::model::knowledge::KnowledgeBase;
use libfuzzer_sys::fuzz_target;

static MODEL: LazyLock<Builtin> = LazyLock::new(|| Builtin::new(Arc::new(KnowledgeBase::builtin())));

fuzz_target!(|body: &[u8]| {
    match ChatRequest::from_json(body) {
        Ok(request) => {
            assert!(!request.message.trim().is_empty() && request.message.len() <= MAX_MESSAGE_BYTES);
            assert!(!request.message.contains('\0'));
            let answer = MODEL.answer(&request.message);
            assert!((0.0..=1.0).contains(&answer.confidence), "{answer:?}");
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{e:?}");
            assert!(!e.error.is_empty());
        }
    }
});
