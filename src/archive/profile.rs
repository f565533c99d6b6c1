//! Named profiles of the AWS shared files (`~/.aws/credentials`, `~/.aws/config`), which `object_store`
//! does not read: the profile `AWS_PROFILE` names (or `default`) gives the keys, the region and the
//! endpoint the environment does not. The environment wins, as in the AWS CLI: keys in
//! `AWS_ACCESS_KEY_ID` are used whatever the profile holds.
//!
//! Only static settings are read. A profile that gets its keys some other way (`credential_process`,
//! `sso_session`, `role_arn`) is refused when it was asked for by name, with the command that exports its
//! keys; the `default` profile without keys is passed over, so the rest of the chain (web identity, the
//! instance's role) still applies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// What a profile says, for the settings the environment leaves open.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<String>,
    pub(crate) session_token: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint_url: Option<String>,
}

/// Keys by which a profile gets credentials pgsafe does not fetch itself.
const INDIRECT: [&str; 5] =
    ["credential_process", "sso_session", "sso_start_url", "role_arn", "web_identity_token_file"];

/// The profile the environment `var` selects, read from the shared files, keeping only what `var` does
/// not already set; `None` when there is nothing to take from it.
pub(crate) fn load(var: impl Fn(&str) -> Option<String>) -> Result<Option<Profile>> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let explicit = set("AWS_PROFILE").or_else(|| set("AWS_DEFAULT_PROFILE"));
    let name = explicit.clone().unwrap_or_else(|| "default".to_owned());
    let home = set("HOME").map(PathBuf::from);
    let file = |var_name: &str, default: &str| {
        set(var_name).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let credentials_path = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_path = file("AWS_CONFIG_FILE", "config");

    let credentials = read_section(credentials_path.as_deref(), |section| section == name)?;
    let config = read_section(config_path.as_deref(), |section| {
        section.strip_prefix("profile").is_some_and(|rest| rest.starts_with([' ', '\t']) && rest.trim() == name)
            || (name == "default" && section == "default")
    })?;
    if credentials.is_none() && config.is_none() {
        return match explicit {
            Some(_) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the AWS profile `{name}` (`AWS_PROFILE`) is in neither {} nor {}", shown(&credentials_path), shown(&config_path)),
            )
            .with_hint("name a profile those files hold, or unset `AWS_PROFILE` and export `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`")),
            None => Ok(None),
        };
    }
    // The credentials file wins over the config file for the same key, as in the AWS CLI.
    let mut values = config.unwrap_or_default();
    values.extend(credentials.unwrap_or_default());
    let take = |key: &str| values.get(key).filter(|v| !v.is_empty()).cloned();

    let mut profile = Profile::default();
    // Web identity (EKS, GitHub OIDC) comes before the `default` profile's keys; a profile named comes first.
    let web_identity = explicit.is_none() && set("AWS_WEB_IDENTITY_TOKEN_FILE").is_some();
    if set("AWS_ACCESS_KEY_ID").is_none() && set("AWS_SECRET_ACCESS_KEY").is_none() && !web_identity {
        profile.access_key_id = take("aws_access_key_id");
        profile.secret_access_key = take("aws_secret_access_key");
        profile.session_token = take("aws_session_token");
        match (&profile.access_key_id, &profile.secret_access_key) {
            // A session token of the environment belongs to other keys: sent with the profile's, every
            // request would be refused as signed wrongly.
            (Some(_), Some(_)) if profile.session_token.is_none() && set("AWS_SESSION_TOKEN").is_some() => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "`AWS_SESSION_TOKEN` is set without `AWS_ACCESS_KEY_ID`, and the AWS profile `{name}` gives \
                         keys of its own, without a token"
                    ),
                )
                .with_hint("unset `AWS_SESSION_TOKEN`, or export the keys it belongs to"));
            }
            (Some(_), Some(_)) => {}
            (None, None) if explicit.is_none() => {}
            (None, None) => {
                let how = INDIRECT.iter().find(|k| values.contains_key(**k));
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    match how {
                        Some(key) => {
                            format!("the AWS profile `{name}` gets its keys by `{key}`, which pgsafe does not run")
                        }
                        None => {
                            format!("the AWS profile `{name}` holds no `aws_access_key_id` and `aws_secret_access_key`")
                        }
                    },
                )
                .with_hint(format!(
                    "export its keys first: eval \"$(aws configure export-credentials --profile {name} --format env)\""
                )));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the AWS profile `{name}` holds only one of `aws_access_key_id` and `aws_secret_access_key`"
                    ),
                )
                .with_hint(format!("see {} and {}", shown(&credentials_path), shown(&config_path))));
            }
        }
    }
    if set("AWS_REGION").is_none() && set("AWS_DEFAULT_REGION").is_none() {
        profile.region = take("region");
    }
    if set("AWS_ENDPOINT_URL").is_none() && set("AWS_ENDPOINT").is_none() {
        profile.endpoint_url = take("endpoint_url");
    }
    Ok((profile != Profile::default()).then_some(profile))
}

fn shown(path: &Option<PathBuf>) -> String {
    path.as_ref().map_or_else(|| "the shared files (no `HOME`)".to_owned(), |p| format!("`{}`", p.display()))
}

/// The keys of the first section of the file at `path` whose name `wanted` accepts; `None` when the file
/// or the section does not exist.
fn read_section(path: Option<&Path>, wanted: impl Fn(&str) -> bool) -> Result<Option<HashMap<String, String>>> {
    let Some(path) = path else { return Ok(None) };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::new(ErrorKind::InvalidInput, format!("cannot read `{}`", path.display())).with_source(e));
        }
    };
    Ok(parse(&text, wanted))
}

/// The AWS shared files' INI dialect: `[section]` lines, `key = value` lines, whole-line comments (`#`,
/// `;`), and indented lines that belong to the key above them (`s3 =` and its nested settings), which no
/// setting read here uses.
fn parse(text: &str, wanted: impl Fn(&str) -> bool) -> Option<HashMap<String, String>> {
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some(section) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            inside = wanted(section.trim());
            if inside {
                found = Some(HashMap::new());
            }
            continue;
        }
        if let (true, Some((key, value)), Some(map)) = (inside, trimmed.split_once('='), found.as_mut()) {
            map.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "# keys\r\n[default]\r\naws_access_key_id = AKIADEFAULT\r\naws_secret_access_key = s3cret\r\n\r\n[backup]\naws_access_key_id=AKIABACKUP\naws_secret_access_key=backup-secret\naws_session_token = tok\n";
    const CONFIG: &str = "[default]\nregion = eu-west-1\n\n[profile backup]\nregion = eu-central-1\nendpoint_url = http://minio:9000\ns3 =\n  max_concurrent_requests = 20\n\n[profile sso]\nsso_session = corp\nregion = us-east-1\n\n[profile half]\naws_access_key_id = AKIAHALF\n";

    fn home() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(dir.path().join(".aws/credentials"), CREDENTIALS).unwrap();
        std::fs::write(dir.path().join(".aws/config"), CONFIG).unwrap();
        dir
    }

    fn load_with(vars: &[(&str, &str)]) -> Result<Option<Profile>> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        load(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_named_profile_gives_keys_region_and_endpoint_from_both_files() {
        let dir = home();
        let home = dir.path().to_str().unwrap();
        let p = load_with(&[("HOME", home), ("AWS_PROFILE", "backup")]).unwrap().unwrap();
        assert_eq!(p.access_key_id.as_deref(), Some("AKIABACKUP"));
        assert_eq!(p.secret_access_key.as_deref(), Some("backup-secret"));
        assert_eq!(p.session_token.as_deref(), Some("tok"));
        assert_eq!(p.region.as_deref(), Some("eu-central-1"));
        assert_eq!(p.endpoint_url.as_deref(), Some("http://minio:9000"), "nested `s3 =` lines are passed over");

        let p = load_with(&[("HOME", home)]).unwrap().unwrap();
        assert_eq!(p.access_key_id.as_deref(), Some("AKIADEFAULT"), "a line ending of Windows is no part of a key");
        assert_eq!(p.secret_access_key.as_deref(), Some("s3cret"));
        assert_eq!(p.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn the_environment_wins_over_the_profile() {
        let dir = home();
        let home = dir.path().to_str().unwrap();
        let env =
            [("HOME", home), ("AWS_PROFILE", "backup"), ("AWS_ACCESS_KEY_ID", "AKIAENV"), ("AWS_REGION", "ap-south-1")];
        let p = load_with(&env).unwrap().unwrap();
        assert_eq!((p.access_key_id, p.secret_access_key, p.session_token, p.region), (None, None, None, None));
        assert_eq!(p.endpoint_url.as_deref(), Some("http://minio:9000"));
    }

    #[test]
    fn a_profile_asked_for_by_name_that_cannot_give_keys_is_an_error_naming_it() {
        let dir = home();
        let home = dir.path().to_str().unwrap();
        let e = load_with(&[("HOME", home), ("AWS_PROFILE", "nosuch")]).unwrap_err().to_string();
        assert!(e.contains("`nosuch`") && e.contains(".aws/credentials"), "{e}");
        let e = load_with(&[("HOME", home), ("AWS_PROFILE", "sso")]).unwrap_err();
        assert!(e.to_string().contains("by `sso_session`"), "{e}");
        assert!(e.hint().unwrap().contains("export-credentials --profile sso"), "{:?}", e.hint());
        let e = load_with(&[("HOME", home), ("AWS_PROFILE", "half")]).unwrap_err().to_string();
        assert!(e.contains("only one of"), "{e}");
    }

    #[test]
    fn web_identity_comes_before_the_default_profile_and_a_stray_session_token_is_refused() {
        let dir = home();
        let home = dir.path().to_str().unwrap();
        let p = load_with(&[("HOME", home), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")]).unwrap().unwrap();
        assert_eq!((p.access_key_id, p.region.as_deref()), (None, Some("eu-west-1")));
        let named = [("HOME", home), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_PROFILE", "backup")];
        assert_eq!(load_with(&named).unwrap().unwrap().access_key_id.as_deref(), Some("AKIABACKUP"));
        let e = load_with(&[("HOME", home), ("AWS_SESSION_TOKEN", "stale")]).unwrap_err().to_string();
        assert!(e.contains("`AWS_SESSION_TOKEN` is set without `AWS_ACCESS_KEY_ID`"), "{e}");
        // The profile's own token goes with its keys.
        let p = load_with(&[("HOME", home), ("AWS_SESSION_TOKEN", "stale"), ("AWS_PROFILE", "backup")]).unwrap();
        assert_eq!(p.unwrap().session_token.as_deref(), Some("tok"));
    }

    #[test]
    fn without_files_or_a_default_profile_nothing_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        assert_eq!(load_with(&[("HOME", home)]).unwrap(), None);
        assert_eq!(load_with(&[]).unwrap(), None);
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(dir.path().join(".aws/config"), "[profile other]\nregion = x\n").unwrap();
        assert_eq!(load_with(&[("HOME", home)]).unwrap(), None);
        let custom = dir.path().join("creds");
        std::fs::write(&custom, "[default]\naws_access_key_id = A\naws_secret_access_key = B\n").unwrap();
        let p = load_with(&[("HOME", home), ("AWS_SHARED_CREDENTIALS_FILE", custom.to_str().unwrap())]).unwrap();
        assert_eq!(p.unwrap().access_key_id.as_deref(), Some("A"));
    }
}
