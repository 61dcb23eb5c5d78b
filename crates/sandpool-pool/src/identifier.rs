//! Session identifiers chosen by clients (`?identifier=`), validated at the boundary.

/// A validated session identifier: 4–128 characters from the character class of the
/// 2025-10-02-preview data-plane spec (`[a-zA-Z0-9_|}{\[\]:"';<>?/.,@#$%^&*()\-+=!~\`]`),
/// a superset of the documented list that accepts UUIDs. Never used in a file path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("the identifier query parameter is required")]
    Missing,
    #[error("identifier must be 4 to 128 characters long, got {0}")]
    Length(usize),
    #[error("identifier contains the character {0:?}, which is not allowed; use letters, digits and _|{{}}[]:\"';<>?/.,@#$%^&*()-+=!~`")]
    Character(char),
}

const PUNCTUATION: &str = "_|}{[]:\"';<>?/.,@#$%^&*()-+=!~`";

impl Identifier {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        if raw.is_empty() {
            return Err(IdentifierError::Missing);
        }
        let len = raw.chars().count();
        if !(4..=128).contains(&len) {
            return Err(IdentifierError::Length(len));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || PUNCTUATION.contains(*c)))
        {
            return Err(IdentifierError::Character(c));
        }
        Ok(Identifier(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_the_documented_punctuation() {
        for ok in [
            "abcd",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "a|b-c&d^e%f$g#h(i)j{k}l[m]n;o<p>",
            &"x".repeat(128),
        ] {
            assert!(Identifier::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn refuses_bad_lengths_and_characters() {
        assert_eq!(Identifier::parse(""), Err(IdentifierError::Missing));
        assert_eq!(Identifier::parse("abc"), Err(IdentifierError::Length(3)));
        assert_eq!(
            Identifier::parse(&"x".repeat(129)),
            Err(IdentifierError::Length(129))
        );
        assert_eq!(Identifier::parse("ab cd"), Err(IdentifierError::Character(' ')));
        assert_eq!(Identifier::parse("abcd\\"), Err(IdentifierError::Character('\\')));
        assert_eq!(Identifier::parse("abcé"), Err(IdentifierError::Character('é')));
        assert_eq!(Identifier::parse("ab\ncd"), Err(IdentifierError::Character('\n')));
    }
}
