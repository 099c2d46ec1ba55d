//! Bucket names (S3's rules) and the main/draft pair.

use std::fmt;
use thiserror::Error;

/// A valid S3 bucket name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketName(String);

/// Why a bucket name was refused: S3's bucket naming rules, each its own variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BucketError {
    /// Not 3 to 63 characters.
    #[error("bucket name {name:?} must be 3 to 63 characters")]
    Length {
        /// The name asked for.
        name: String,
    },
    /// A character other than a-z, 0-9, '-' and '.'.
    #[error("bucket name {name:?} may hold only lowercase letters, digits, '-' and '.'")]
    Characters {
        /// The name asked for.
        name: String,
    },
    /// Starts or ends with something other than a letter or digit.
    #[error("bucket name {name:?} must start and end with a letter or digit")]
    Edges {
        /// The name asked for.
        name: String,
    },
    /// Holds '..', '.-' or '-.'.
    #[error("bucket name {name:?} must not contain '..', '.-' or '-.'")]
    Adjacent {
        /// The name asked for.
        name: String,
    },
    /// Looks like an IPv4 address.
    #[error("bucket name {name:?} must not look like an IP address")]
    IpAddress {
        /// The name asked for.
        name: String,
    },
}

impl BucketName {
    /// # Errors
    /// A [`BucketError`] naming the rule broken (the name is echoed: bucket names are not secret).
    pub fn parse(name: &str) -> Result<Self, BucketError> {
        let owned = || name.chars().take(80).collect::<String>();
        if !(3..=63).contains(&name.len()) {
            return Err(BucketError::Length { name: owned() });
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(BucketError::Characters { name: owned() });
        }
        let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        if !edge_ok(name.bytes().next()) || !edge_ok(name.bytes().last()) {
            return Err(BucketError::Edges { name: owned() });
        }
        if name.contains("..") || name.contains(".-") || name.contains("-.") {
            return Err(BucketError::Adjacent { name: owned() });
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(BucketError::IpAddress { name: owned() });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where drafts and confirmed objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    /// Where confirmed objects live.
    pub main: BucketName,
    /// Where drafts are uploaded (`<main>-draft` unless configured).
    pub draft: BucketName,
}

impl Buckets {
    /// `main` is `BUCKET_NAME`; the draft bucket is `draft` when given, else `<main>-draft`.
    ///
    /// # Errors
    /// A [`BucketError`] for either name; also when both are the same bucket (a sweep would
    /// then delete confirmed objects).
    pub fn new(main: &str, draft: Option<&str>) -> Result<Self, BucketError> {
        let main = BucketName::parse(main)?;
        let draft = match draft {
            Some(d) => BucketName::parse(d)?,
            None => BucketName::parse(&format!("{main}-draft"))?,
        };
        if draft == main {
            return Err(BucketError::Adjacent {
                name: format!("{main} (main and draft must differ)"),
            });
        }
        Ok(Self { main, draft })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_rules() {
        for ok in ["abc", "main", "my.bucket-1", &"a".repeat(63), "1.2.3"] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        type Case<'a> = (&'a str, fn(&BucketError) -> bool);
        let bad: &[Case<'_>] = &[
            ("ab", |e| matches!(e, BucketError::Length { .. })),
            (&"a".repeat(64), |e| matches!(e, BucketError::Length { .. })),
            ("Main", |e| matches!(e, BucketError::Characters { .. })),
            ("my_bucket", |e| matches!(e, BucketError::Characters { .. })),
            ("a b", |e| matches!(e, BucketError::Characters { .. })),
            ("-abc", |e| matches!(e, BucketError::Edges { .. })),
            ("abc.", |e| matches!(e, BucketError::Edges { .. })),
            ("a..b", |e| matches!(e, BucketError::Adjacent { .. })),
            ("a.-b", |e| matches!(e, BucketError::Adjacent { .. })),
            ("192.168.1.1", |e| {
                matches!(e, BucketError::IpAddress { .. })
            }),
        ];
        for (name, is) in bad {
            let err = BucketName::parse(name).unwrap_err();
            assert!(is(&err), "{name}: {err}");
        }
    }

    #[test]
    fn draft_bucket_defaults_to_main_dash_draft() {
        let b = Buckets::new("main", None).unwrap();
        assert_eq!(b.draft.as_str(), "main-draft");
        assert_eq!(
            Buckets::new("main", Some("drafts")).unwrap().draft.as_str(),
            "drafts"
        );
        // <main>-draft must itself be valid: 58 + 6 = 64 characters is too long.
        assert!(Buckets::new(&"a".repeat(58), None).is_err());
        assert!(Buckets::new("same", Some("same")).is_err());
    }
}
