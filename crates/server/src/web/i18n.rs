//! The console's strings in English and Spanish. Each catalogue is a TOML file embedded in the
//! binary (`i18n/en.toml`, `i18n/es.toml`); sections flatten into dotted keys (`[nav] campaigns`
//! is `nav.campaigns`). A unit test checks that both catalogues have exactly the same keys and
//! that every key the code asks for exists.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The cookie that keeps the user's choice of language.
pub const LANG_COOKIE: &str = "campana_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Es];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
    /// The language's own name, for the selector.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
        }
    }
    pub fn parse(code: &str) -> Option<Lang> {
        let code = code.trim().to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| code == l.code() || code.starts_with(&format!("{}-", l.code())))
    }

    /// The cookie's choice, else the first supported language of `Accept-Language`, else English.
    pub fn from_headers(h: &axum::http::HeaderMap) -> Lang {
        if let Some(l) = super::cookie(h, LANG_COOKIE).and_then(|c| Lang::parse(&c)) {
            return l;
        }
        let accept = h.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        accept.split(',').filter_map(|part| Lang::parse(part.split(';').next().unwrap_or(""))).next().unwrap_or(Lang::En)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("i18n/en.toml"),
            Lang::Es => include_str!("i18n/es.toml"),
        }
    }

    fn catalogue(self) -> &'static HashMap<String, String> {
        static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
        static ES: OnceLock<HashMap<String, String>> = OnceLock::new();
        let cell = match self {
            Lang::En => &EN,
            Lang::Es => &ES,
        };
        cell.get_or_init(|| parse_catalogue(self.source()).unwrap_or_else(|e| panic!("i18n/{}.toml: {e}", self.code())))
    }

    /// The text for `key`; a missing key shows itself (and the unit tests catch it).
    pub fn t(self, key: &str) -> &'static str {
        match self.catalogue().get(key) {
            Some(s) => s.as_str(),
            None => {
                tracing::warn!(key, lang = self.code(), "missing translation");
                // Leaking is bounded: only keys absent from the catalogue get here, and tests keep that set empty.
                Box::leak(key.to_string().into_boxed_str())
            }
        }
    }

    /// The text for `key` if the catalogue has it (enumeration values, reason codes).
    pub fn try_t(self, key: &str) -> Option<&'static str> {
        self.catalogue().get(key).map(String::as_str)
    }

    /// Every key under `prefix` (e.g. `desk.js.`), without the prefix, with its text: the
    /// strings a page's script writes itself.
    pub fn with_prefix(self, prefix: &str) -> std::collections::BTreeMap<&'static str, &'static str> {
        self.catalogue().iter().filter_map(|(k, v)| Some((k.strip_prefix(prefix)?, v.as_str()))).collect()
    }

    /// `t(key)` with `{name}` placeholders replaced.
    pub fn tf(self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.t(key).to_string();
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }
}

fn parse_catalogue(src: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = toml::from_str(src).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    flatten("", &table, &mut out)?;
    Ok(out)
}

fn flatten(prefix: &str, t: &toml::Table, out: &mut HashMap<String, String>) -> Result<(), String> {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(sub) => flatten(&key, sub, out)?,
            other => return Err(format!("{key}: expected a string, found {}", other.type_str())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(l: Lang) -> BTreeSet<String> {
        l.catalogue().keys().cloned().collect()
    }

    #[test]
    fn catalogues_have_the_same_keys() {
        let (en, es) = (keys(Lang::En), keys(Lang::Es));
        let only_en: Vec<_> = en.difference(&es).collect();
        let only_es: Vec<_> = es.difference(&en).collect();
        assert!(only_en.is_empty() && only_es.is_empty(), "only in en.toml: {only_en:?}; only in es.toml: {only_es:?}");
        assert!(en.len() > 100, "the catalogue looks truncated: {} keys", en.len());
    }

    /// Every literal key passed to `t("…")`, `tf("…"` or `try_t` in the web module exists.
    #[test]
    fn every_key_used_exists() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("form.rs"),
            include_str!("catalog.rs"),
            include_str!("campaigns.rs"),
            include_str!("lists.rs"),
            include_str!("dnc.rs"),
            include_str!("fields.rs"),
            include_str!("agent.rs"),
            include_str!("imports.rs"),
            include_str!("account.rs"),
            include_str!("audit.rs"),
            include_str!("rules.rs"),
        ];
        let en = keys(Lang::En);
        let mut missing = BTreeSet::new();
        for src in sources {
            for pat in [".t(\"", ".tf(\"", "key: \"", "title: \""] {
                for (i, _) in src.match_indices(pat) {
                    let rest = &src[i + pat.len()..];
                    let key = &rest[..rest.find('"').unwrap_or(0)];
                    if !key.is_empty() && !key.contains('{') && !en.contains(key) {
                        missing.insert(key.to_string());
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys used in the code but missing from en.toml: {missing:?}");
    }

    #[test]
    fn language_choice() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert(axum::http::header::ACCEPT_LANGUAGE, "fr-FR, es-MX;q=0.8, en;q=0.5".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::Es);
        h.insert(axum::http::header::COOKIE, format!("{LANG_COOKIE}=en").parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::En);
        assert!(Lang::Es.tf("campaigns.available_note", &[("time", "10:00")]).contains("10:00"));
    }
}
