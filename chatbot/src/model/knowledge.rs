//! The knowledge base: intents, their keywords and answers in French and English, read from a YAML data file.
//!
//! The default base ships in the crate (`knowledge/kb.yaml`); a shop replaces it with `--knowledge-file`.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::chat::Language;

/// The knowledge base shipped with the chatbot.
pub const DEFAULT_KNOWLEDGE_BASE: &str = include_str!("../../knowledge/kb.yaml");

/// Intent name of a message that matched nothing.
pub const UNKNOWN_INTENT: &str = "unknown";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    version: u32,
    escalation_threshold: f64,
    languages: HashMap<String, RawLanguage>,
    default_language: String,
    escalation_reply: PerLanguage,
    intents: Vec<RawIntent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    stopwords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    #[serde(default)]
    escalate: bool,
    #[serde(default)]
    smalltalk: bool,
    #[serde(default = "one")]
    weight: f64,
    keywords: PerLanguageList,
    answer: PerLanguage,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct PerLanguage {
    fr: String,
    en: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerLanguageList {
    fr: Vec<String>,
    en: Vec<String>,
}

/// One keyword: a sequence of normalised words; the last may be a prefix (`livr*`).
#[derive(Debug, Clone)]
pub struct Keyword {
    pub words: Vec<String>,
    pub prefix_last: bool,
}

impl Keyword {
    fn parse(text: &str) -> Result<Keyword, String> {
        let (body, prefix_last) = match text.strip_suffix('*') {
            Some(b) => (b, true),
            None => (text, false),
        };
        let words = tokenize(body);
        if words.is_empty() {
            return Err(format!("keyword {text:?} has no words"));
        }
        if words.join(" ") != body.trim() {
            return Err(format!(
                "keyword {text:?} is not normalised (lowercase, no accents or punctuation): write {:?}",
                words.join(" ")
            ));
        }
        Ok(Keyword { words, prefix_last })
    }

    /// True when the keyword occurs in `tokens` as a contiguous sequence.
    pub fn matches(&self, tokens: &[String]) -> bool {
        let n = self.words.len();
        if tokens.len() < n {
            return false;
        }
        tokens.windows(n).any(|w| {
            w.iter().zip(&self.words).enumerate().all(|(i, (t, k))| {
                if self.prefix_last && i == n - 1 {
                    t.starts_with(k.as_str())
                } else {
                    t == k
                }
            })
        })
    }
}

/// An intent the bot recognises.
#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub escalate: bool,
    /// Greetings, thanks: not what a conversation is about (see `KnowledgeBase::topic`).
    pub smalltalk: bool,
    pub weight: f64,
    pub keywords_fr: Vec<Keyword>,
    pub keywords_en: Vec<Keyword>,
    answer_fr: String,
    answer_en: String,
}

impl Intent {
    pub fn answer(&self, language: Language) -> &str {
        match language {
            Language::Fr => &self.answer_fr,
            Language::En => &self.answer_en,
        }
    }
}

/// A parsed, checked knowledge base.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub escalation_threshold: f64,
    pub default_language: Language,
    pub intents: Vec<Intent>,
    stopwords_fr: HashSet<String>,
    stopwords_en: HashSet<String>,
    escalation_reply: PerLanguage,
}

impl KnowledgeBase {
    /// Parses and checks a knowledge base; errors name what is wrong so a shop can fix its file.
    pub fn from_yaml(text: &str) -> Result<KnowledgeBase, String> {
        let raw: RawBase = serde_yaml::from_str(text).map_err(|e| format!("knowledge base: {e}"))?;
        if raw.version != 1 {
            return Err(format!(
                "knowledge base: version {} is not supported (expected 1)",
                raw.version
            ));
        }
        if !(0.0..=1.0).contains(&raw.escalation_threshold) {
            return Err("knowledge base: escalation_threshold must be between 0 and 1".into());
        }
        let default_language = Language::parse(&raw.default_language).ok_or_else(|| {
            format!(
                "knowledge base: default_language {:?} is not fr or en",
                raw.default_language
            )
        })?;
        let stopwords = |lang: &str| -> Result<HashSet<String>, String> {
            let l = raw
                .languages
                .get(lang)
                .ok_or_else(|| format!("knowledge base: languages.{lang} is missing"))?;
            Ok(l.stopwords.iter().flat_map(|w| tokenize(w)).collect())
        };
        let mut names = HashSet::new();
        let mut intents = Vec::with_capacity(raw.intents.len());
        for i in raw.intents {
            if i.name == UNKNOWN_INTENT || !names.insert(i.name.clone()) {
                return Err(format!(
                    "knowledge base: intent name {:?} is reserved or repeated",
                    i.name
                ));
            }
            let parse = |list: &[String]| -> Result<Vec<Keyword>, String> {
                list.iter()
                    .map(|k| Keyword::parse(k).map_err(|e| format!("knowledge base: intent {}: {e}", i.name)))
                    .collect()
            };
            intents.push(Intent {
                keywords_fr: parse(&i.keywords.fr)?,
                keywords_en: parse(&i.keywords.en)?,
                name: i.name,
                escalate: i.escalate,
                smalltalk: i.smalltalk,
                weight: i.weight,
                answer_fr: i.answer.fr,
                answer_en: i.answer.en,
            });
        }
        Ok(KnowledgeBase {
            escalation_threshold: raw.escalation_threshold,
            default_language,
            intents,
            stopwords_fr: stopwords("fr")?,
            stopwords_en: stopwords("en")?,
            escalation_reply: raw.escalation_reply,
        })
    }

    /// The shipped knowledge base.
    pub fn builtin() -> KnowledgeBase {
        KnowledgeBase::from_yaml(DEFAULT_KNOWLEDGE_BASE).expect("the shipped knowledge base is valid")
    }

    pub fn intent(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.name == name)
    }

    /// What a conversation is about, from one of its answers: the intent, unless it is small talk.
    pub fn topic<'a>(&self, intent: &'a str) -> Option<&'a str> {
        match self.intent(intent) {
            Some(i) if i.smalltalk => None,
            _ => Some(intent),
        }
    }

    /// An intent as a label value: a name this knowledge base does not know (stored under an earlier one) is
    /// `unknown`, so that the label's values stay those of [`KnowledgeBase::intent_names`].
    pub fn intent_label<'a>(&self, name: &'a str) -> &'a str {
        match self.intent(name) {
            Some(_) => name,
            None => UNKNOWN_INTENT,
        }
    }

    /// Every intent name an answer can carry (`unknown` included): the bounded `intent` label values.
    pub fn intent_names(&self) -> impl Iterator<Item = &str> + Clone {
        self.intents.iter().map(|i| i.name.as_str()).chain([UNKNOWN_INTENT])
    }

    /// Guesses the language from the function words present; ties go to the default language.
    pub fn detect_language(&self, tokens: &[String]) -> Language {
        let fr = tokens.iter().filter(|t| self.stopwords_fr.contains(t.as_str())).count();
        let en = tokens.iter().filter(|t| self.stopwords_en.contains(t.as_str())).count();
        match fr.cmp(&en) {
            std::cmp::Ordering::Greater => Language::Fr,
            std::cmp::Ordering::Less => Language::En,
            std::cmp::Ordering::Equal => self.default_language,
        }
    }

    /// The text that tells the customer a ticket was opened.
    pub fn escalation_reply(&self, language: Language, ticket_id: &str) -> String {
        let template = match language {
            Language::Fr => &self.escalation_reply.fr,
            Language::En => &self.escalation_reply.en,
        };
        template.replace("{ticket_id}", ticket_id)
    }
}

/// Lowercases, folds accents and splits on anything that is not a letter or a digit.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                fold_accent(l, &mut current);
            }
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Folds the Latin accents of French (and common others) to ASCII, so `livré` and `livre` match.
fn fold_accent(c: char, out: &mut String) {
    let folded = match c {
        'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' => "o",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        'œ' => "oe",
        'æ' => "ae",
        _ => {
            out.push(c);
            return;
        }
    };
    out.push_str(folded);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_folds_case_accents_and_apostrophes() {
        assert_eq!(
            tokenize("Où est l'ADRESSE, svp ?"),
            ["ou", "est", "l", "adresse", "svp"]
        );
        assert_eq!(tokenize("Cœur livré"), ["coeur", "livre"]);
    }

    #[test]
    fn keyword_prefix_and_phrase_matching() {
        let k = Keyword::parse("pas recu").unwrap();
        assert!(k.matches(&tokenize("Je n'ai pas reçu mon colis")));
        assert!(!k.matches(&tokenize("reçu pas")));
        let k = Keyword::parse("livr*").unwrap();
        assert!(k.matches(&tokenize("la livraison")));
        assert!(!k.matches(&tokenize("mon colis")));
    }

    #[test]
    fn rejects_keywords_that_could_never_match() {
        assert!(Keyword::parse("Livraison").is_err());
        assert!(Keyword::parse("reçu").is_err());
    }

    #[test]
    fn shipped_base_is_valid() {
        let kb = KnowledgeBase::builtin();
        assert!(kb.intent("human_request").unwrap().escalate);
        assert!(kb.escalation_reply(Language::En, "T-1").contains("T-1"));
    }
}
