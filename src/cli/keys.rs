//! The options of encrypted archives: recipients for `dump`, identities for the commands that read.

use std::path::{Path, PathBuf};

use clap::Args;
use pgsafe::format::{Keyring, Recipients};
use pgsafe::store::StoreKeys;
use pgsafe::{Error, ErrorKind};

/// Whom `dump` encrypts the archive to. Only public keys: the machine that dumps needs no secret.
#[derive(Debug, Args, Clone, Default)]
pub struct EncryptArgs {
    /// Encrypt the archive to this age recipient (`age1...`) or SSH public key (`ssh-ed25519 ...`,
    /// `ssh-rsa ...`). Repeatable: any one recipient's identity reads the archive.
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    encrypt_to: Vec<String>,

    /// Encrypt the archive to the recipients listed in FILE, one a line, `#` comments (as `age -R`).
    /// Repeatable.
    #[arg(long = "encrypt-to-file", value_name = "FILE")]
    encrypt_to_file: Vec<PathBuf>,
}

impl EncryptArgs {
    /// The recipients, every one checked; empty when the archive is not to be encrypted.
    pub fn recipients(&self) -> Result<Recipients, Error> {
        let mut r = Recipients::default();
        for key in &self.encrypt_to {
            r.add(key, "`--encrypt-to`").map_err(invalid)?;
        }
        for path in &self.encrypt_to_file {
            let text = read(path, "recipients file")?;
            r.add_file(&text, &format!("`{}`", path.display())).map_err(invalid)?;
        }
        Ok(r)
    }
}

/// The identity that opens encrypted archives.
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityArgs {
    /// Read encrypted archives with the age identity in FILE (`age-keygen` output, or an unencrypted
    /// SSH private key). Not needed for plain archives.
    #[arg(long = "identity", value_name = "FILE", env = "PGSAFE_IDENTITY")]
    identity: Option<PathBuf>,
}

impl IdentityArgs {
    /// The identities of the file given, or an empty keyring when none was.
    pub fn keyring(&self) -> Result<Keyring, Error> {
        let Some(path) = &self.identity else { return Ok(Keyring::none()) };
        let text = read(path, "identity file")?;
        Keyring::parse(&text, &format!("identity file `{}`", path.display())).map_err(invalid)
    }
}

fn read(path: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("cannot read the {what} `{}`", path.display())).with_source(e)
    })
}

fn invalid(problem: String) -> Error {
    Error::new(ErrorKind::InvalidInput, problem)
}

/// The keys of the store's encrypted snapshots, from the environment: `PGSAFE_RECIPIENTS` (the recipients
/// themselves, `age1...` or `ssh-...`, separated by commas or new lines; or the path of a recipients file,
/// one a line, as `age -R`) and `--identity FILE` (or `PGSAFE_IDENTITY`). Unset or empty: none.
pub fn store_keys(identity: &IdentityArgs) -> Result<StoreKeys, Error> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut keys = StoreKeys::default();
    if let Some(value) = var("PGSAFE_RECIPIENTS") {
        let text = value.to_string_lossy();
        let inline = text.trim_start();
        if inline.starts_with("age1") || inline.starts_with("ssh-") {
            keys.recipients.add_file(&text.replace(',', "\n"), "`PGSAFE_RECIPIENTS`").map_err(invalid)?;
        } else {
            let path = PathBuf::from(&value);
            let listed = read(&path, "recipients file (`PGSAFE_RECIPIENTS`)")?;
            keys.recipients.add_file(&listed, &format!("`{}`", path.display())).map_err(invalid)?;
        }
    }
    keys.keyring = identity.keyring()?;
    Ok(keys)
}
