//! A shop's knowledge-base file (`--knowledge`): loaded or refused with a message, and once loaded, answering any
//! message without a panic.
#![no_main]

use std::sync::Arc;

use chatbot::model::builtin::Builtin;
use chatbot::model::knowledge::KnowledgeBase;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match KnowledgeBase::from_yaml(text) {
        Ok(kb) => {
            let model = Builtin::new(Arc::new(kb));
            for message in ["Où est ma commande ?", "I want a refund", "bonjour", "?"] {
                let answer = model.answer(message);
                assert!((0.0..=1.0).contains(&answer.confidence), "{answer:?}");
            }
        }
        Err(message) => assert!(message.starts_with("knowledge base: "), "{message}"),
    }
});
