//! The parts of the chatbot's metric contract that the operator cannot import (it does not link the chatbot) and
//! keeps a copy of: checked here, where both crates are visible.

/// The promtool unit tests the operator generates (`render --tests`) put observations into histogram buckets:
/// with other bounds than the chatbot's, they would prove alerts against a histogram that does not exist.
#[test]
fn the_operator_assumes_the_chatbots_latency_buckets() {
    assert_eq!(chatbot_operator::crd::LATENCY_BUCKETS, chatbot::metrics::HTTP_BUCKETS);
}
