//! The embedded model: a keyword intent classifier over the knowledge base. Deterministic, no network.

use std::sync::Arc;

use super::ModelAnswer;
use super::knowledge::{KnowledgeBase, UNKNOWN_INTENT, tokenize};
use crate::chat::Language;

/// What the classifier found in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Index into the knowledge base's intents; `None` when no keyword matched.
    pub intent: Option<usize>,
    pub confidence: f64,
    pub language: Language,
}

/// The builtin backend.
#[derive(Debug, Clone)]
pub struct Builtin {
    kb: Arc<KnowledgeBase>,
}

impl Builtin {
    pub fn new(kb: Arc<KnowledgeBase>) -> Self {
        Builtin { kb }
    }

    /// Scores every intent: each matched keyword counts its word count times the intent's weight. Confidence is the
    /// winner's share of the two best scores times a strength that grows with its score, so a lone weak match or a
    /// near tie stays below the escalation threshold.
    pub fn classify(&self, message: &str) -> Classification {
        let tokens = tokenize(message);
        let language = self.kb.detect_language(&tokens);
        let (mut best, mut best_score, mut second) = (None, 0.0_f64, 0.0_f64);
        for (i, intent) in self.kb.intents.iter().enumerate() {
            // Customers mix languages ("merci, where is my order"): match both keyword lists.
            let score: f64 = intent
                .keywords_fr
                .iter()
                .chain(&intent.keywords_en)
                .filter(|k| k.matches(&tokens))
                .map(|k| k.words.len() as f64 * intent.weight)
                .sum();
            if score > best_score {
                second = best_score;
                best_score = score;
                best = Some(i);
            } else if score > second {
                second = score;
            }
        }
        let confidence = if best.is_some() {
            let share = best_score / (best_score + second);
            let strength = 1.0 - (-2.0 * best_score).exp();
            ((share * strength) * 1000.0).round() / 1000.0
        } else {
            0.0
        };
        Classification {
            intent: best,
            confidence,
            language,
        }
    }

    /// Answers from the knowledge base; low confidence and requests for a human escalate.
    pub fn answer(&self, message: &str) -> ModelAnswer {
        let c = self.classify(message);
        let Some(index) = c.intent else {
            return ModelAnswer {
                intent: UNKNOWN_INTENT.to_owned(),
                confidence: 0.0,
                reply: String::new(),
                escalate: true,
                language: c.language,
            };
        };
        let intent = &self.kb.intents[index];
        let confident = c.confidence >= self.kb.escalation_threshold;
        ModelAnswer {
            intent: intent.name.clone(),
            confidence: c.confidence,
            // A guess below the threshold is not shown: the customer gets the ticket instead of a wrong answer.
            reply: if confident || intent.escalate {
                intent.answer(c.language).to_owned()
            } else {
                String::new()
            },
            escalate: intent.escalate || !confident,
            language: c.language,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Builtin {
        Builtin::new(Arc::new(KnowledgeBase::builtin()))
    }

    #[test]
    fn classifies_both_languages() {
        let b = builtin();
        let cases = [
            ("Bonjour", "greeting", Language::Fr),
            ("Où est ma commande ?", "order_tracking", Language::Fr),
            ("Mon colis n'est toujours pas livré", "delivery", Language::Fr),
            ("Je voudrais retourner un article", "returns", Language::Fr),
            ("Quand vais-je être remboursé ?", "refund", Language::Fr),
            (
                "Mon téléphone est en panne, il est sous garantie ?",
                "warranty",
                Language::Fr,
            ),
            ("Puis-je payer en plusieurs fois ?", "payment", Language::Fr),
            ("J'ai oublié mon mot de passe", "account", Language::Fr),
            (
                "Quels sont vos horaires d'ouverture ?",
                "opening_hours_contact",
                Language::Fr,
            ),
            ("Je veux parler à un conseiller", "human_request", Language::Fr),
            ("Where is my order?", "order_tracking", Language::En),
            ("My parcel hasn't been delivered yet", "delivery", Language::En),
            ("I want to return an item", "returns", Language::En),
            ("When will I get my refund?", "refund", Language::En),
            ("My laptop broke, is it under warranty?", "warranty", Language::En),
            ("Can I pay with PayPal?", "payment", Language::En),
            ("I forgot my password", "account", Language::En),
            ("What are your opening hours?", "opening_hours_contact", Language::En),
            ("I want to talk to a human agent", "human_request", Language::En),
        ];
        for (message, intent, language) in cases {
            let a = b.answer(message);
            assert_eq!((a.intent.as_str(), a.language), (intent, language), "{message}");
        }
    }

    #[test]
    fn deterministic_and_escalates_what_it_cannot_answer() {
        let b = builtin();
        assert_eq!(b.answer("Where is my order?"), b.answer("Where is my order?"));
        let a = b.answer("xyzzy qwerty");
        assert_eq!(
            (a.intent.as_str(), a.escalate, a.confidence),
            (UNKNOWN_INTENT, true, 0.0)
        );
        assert!(a.reply.is_empty());
        let a = b.answer("I want to talk to a human agent");
        assert!(a.escalate && !a.reply.is_empty());
        let a = b.answer("Where is my order?");
        assert!(!a.escalate && a.confidence >= 0.45, "{a:?}");
    }
}
