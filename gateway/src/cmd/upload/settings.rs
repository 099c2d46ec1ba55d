//! Flags and environment turned into what `gateway upload` does, checked before any request:
//! a bad flag or a missing file is exit 2, a bad endpoint or token source exit 64.

use super::name;
use super::plan::{MAX_PART, MIN_PART};
use crate::cmd::cli::UploadArgs;
use crate::cmd::exit::Exit;
use http::HeaderValue;
use std::path::PathBuf;
use std::time::SystemTime;

/// The default API endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";
/// Appended to FILE's path for the default state file.
pub const STATE_SUFFIX: &str = ".draftstore-upload";

/// The `Authorization` header value, marked sensitive; `Debug` never shows it.
#[derive(Clone)]
pub struct Token(pub HeaderValue);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything the upload needs, parsed and checked.
#[derive(Debug)]
pub struct Settings {
    /// The input file.
    pub file: PathBuf,
    /// Its size in bytes when the upload started.
    pub size: u64,
    /// Its modification time then (a changed file is not resumed).
    pub modified: Option<SystemTime>,
    /// The object name asked for.
    pub object_name: String,
    /// The Content-Type to store.
    pub content_type: Option<String>,
    /// Confirm after the upload.
    pub confirm: bool,
    /// Confirm with `overwrite`.
    pub overwrite: bool,
    /// The API's base URL, ending in `/`.
    pub endpoint: reqwest::Url,
    /// The bearer token, when one is given.
    pub token: Option<Token>,
    /// Parts in flight at once.
    pub parallel: usize,
    /// The part size to ask for, in bytes.
    pub part_size: Option<u64>,
    /// Files of at least this many bytes go in parts.
    pub multipart_threshold: u64,
    /// The resume state file.
    pub state_file: PathBuf,
    /// Retries after the first attempt of each PUT.
    pub retries: u32,
    /// Send a SHA-256 per part.
    pub checksum: bool,
}

fn usage(message: impl Into<String>) -> Exit {
    Exit {
        code: super::EXIT_USAGE,
        message: message.into(),
    }
}

impl Settings {
    /// Reads the flags, the environment (`env`) and the file's metadata.
    ///
    /// # Errors
    /// Exit 2 (usage): no such regular file, a name that is not UTF-8, a part size or threshold
    /// outside S3's limits. Exit 64: an endpoint that is not `http(s)://host[:port][/path]`, an
    /// unreadable or empty token file, a token a header cannot carry.
    pub fn new(args: &UploadArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Exit> {
        let shown = args.file.display();
        let meta = std::fs::metadata(&args.file).map_err(|e| usage(format!("{shown}: {e}")))?;
        if !meta.is_file() {
            return Err(usage(format!("{shown} is not a regular file")));
        }
        let object_name = match &args.name {
            Some(name) => name.clone(),
            None => args
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
                .ok_or_else(|| usage(format!("{shown}: the name is not UTF-8, give --name")))?,
        };
        if let Some(size) = args.part_size {
            if !(MIN_PART..=MAX_PART).contains(&size) {
                return Err(usage(format!(
                    "--part-size must be {MIN_PART}..={MAX_PART} bytes (S3's part limits)"
                )));
            }
        }
        if !(MIN_PART..=MAX_PART).contains(&args.multipart_threshold) {
            return Err(usage(format!(
                "--multipart-threshold must be {MIN_PART}..={MAX_PART} bytes"
            )));
        }
        let mut state_file = args.file.clone().into_os_string();
        state_file.push(STATE_SUFFIX);
        Ok(Self {
            file: args.file.clone(),
            size: meta.len(),
            modified: meta.modified().ok(),
            object_name,
            content_type: args.content_type.clone(),
            confirm: args.confirm,
            overwrite: args.overwrite,
            endpoint: endpoint(args.endpoint.clone(), env)?,
            token: token(args.token_file.as_ref(), env)?,
            parallel: usize::from(args.parallel),
            part_size: args.part_size,
            multipart_threshold: args.multipart_threshold,
            state_file: args.state_file.clone().unwrap_or_else(|| state_file.into()),
            retries: args.retries,
            checksum: !args.no_checksum,
        })
    }
}

/// The endpoint from the flag, else the variable, else [`DEFAULT_ENDPOINT`]; ends in `/`.
fn endpoint(
    flag: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<reqwest::Url, Exit> {
    let (source, text) = match flag {
        Some(text) => ("--endpoint", text),
        None => match env(name::DRAFTSTORE_ENDPOINT).filter(|v| !v.trim().is_empty()) {
            Some(text) => (name::DRAFTSTORE_ENDPOINT, text),
            None => ("the default endpoint", DEFAULT_ENDPOINT.to_owned()),
        },
    };
    let bad = || {
        Exit::usage(format!(
            "{source} must be http(s)://host[:port][/path], without credentials, query or fragment"
        ))
    };
    let mut url = reqwest::Url::parse(text.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The token from `--token-file`, else `DRAFTSTORE_TOKEN`; `None` when neither is given.
fn token(
    file: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Token>, Exit> {
    let (source, text) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Exit::usage(format!("--token-file {}: {e}", path.display())))?;
            (format!("--token-file {}", path.display()), text)
        }
        None => match env(name::DRAFTSTORE_TOKEN) {
            Some(text) => (name::DRAFTSTORE_TOKEN.to_owned(), text),
            None => return Ok(None),
        },
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(Exit::usage(format!("{source} holds no token")));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {text}")).map_err(|_| {
        Exit::usage(format!(
            "{source}: the token holds characters a header cannot carry"
        ))
    })?;
    value.set_sensitive(true);
    Ok(Some(Token(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_endpoint_comes_from_the_flag_then_the_variable_then_the_default() {
        let env = env_of(&[(name::DRAFTSTORE_ENDPOINT, "http://127.0.0.1:9/base")]);
        assert_eq!(
            endpoint(Some("https://api.example:8443".into()), &env)
                .unwrap()
                .as_str(),
            "https://api.example:8443/"
        );
        assert_eq!(
            endpoint(None, &env).unwrap().as_str(),
            "http://127.0.0.1:9/base/"
        );
        assert_eq!(
            endpoint(None, &env_of(&[])).unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        for bad in [
            "ftp://h",
            "127.0.0.1:8080",
            "http://u:p@h/",
            "http://h/?q=1",
            "nonsense",
        ] {
            assert_eq!(endpoint(Some(bad.into()), &env).unwrap_err().code, 64);
        }
    }

    #[test]
    fn a_token_is_never_shown_and_a_bad_one_is_configuration() {
        let env = env_of(&[(name::DRAFTSTORE_TOKEN, "s3cr3t-token\n")]);
        let token = token(None, &env).unwrap().unwrap();
        assert!(!format!("{token:?}").contains("s3cr3t"));
        assert!(token.0.is_sensitive());
        assert_eq!(token.0.as_bytes(), b"Bearer s3cr3t-token");
        assert!(super::token(None, &env_of(&[])).unwrap().is_none());
        let bad = super::token(None, &env_of(&[(name::DRAFTSTORE_TOKEN, "a\u{7}b")])).unwrap_err();
        assert_eq!(bad.code, 64);
        assert!(!bad.message.contains("a\u{7}b"));
        let empty = super::token(None, &env_of(&[(name::DRAFTSTORE_TOKEN, "  ")])).unwrap_err();
        assert_eq!(empty.code, 64);
        let missing = PathBuf::from("/nonexistent/token");
        assert_eq!(
            super::token(Some(&missing), &env_of(&[])).unwrap_err().code,
            64
        );
    }
}
