//! The console's agent accounts: a JSON file with each agent's name, role,
//! argon2 password hash and session generation, plus the secret that signs
//! session cookies.
//!
//! `lepton agent add|list|remove|passwd` edits the file. The server reads it
//! and reads it again when it changes, so accounts take effect without a
//! restart. Several servers sharing one file accept each other's cookies.
//!
//! ```json
//! {"version":1,"secret":"<64 hex digits>","next_generation":3,
//!  "agents":[{"name":"alice","role":"admin","password_hash":"$argon2id$...","generation":1}]}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use bot_core::AgentId;
use serde::{Deserialize, Serialize};

/// The accounts file format this code writes and reads.
const FORMAT_VERSION: u32 = 1;

/// The maximum length of an agent name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The shortest password `lepton agent add` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The maximum length of a password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// An agent's permissions in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Handles conversations: claim, reply, notes, transfer, hand back, close.
    Agent,
    /// An agent who may also transfer others' conversations and reload the bot.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agent" => Some(Self::Agent),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// One agent's account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub name: AgentId,
    pub role: Role,
    /// The argon2 hash as a PHC string (`$argon2id$v=19$...`).
    password_hash: String,
    /// Changes on every password change, so that cookies signed before it stop working.
    pub generation: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("cannot read the accounts file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    #[error("cannot write the accounts file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },

    #[error("the accounts file {path} is not valid: {detail}; fix it or move it away and add the agents again")]
    Invalid { path: PathBuf, detail: String },

    #[error("invalid agent name {name:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '_', '.' and '-'")]
    InvalidName { name: String },

    #[error("agent {name} exists already: change the password with `lepton agent passwd {name}`")]
    Exists { name: String },

    #[error("no agent named {name}: `lepton agent list` shows the agents")]
    NotFound { name: String },

    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,

    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,

    #[error("cannot hash the password: {detail}")]
    Hash { detail: String },

    #[error("the system's random number generator failed: {detail}")]
    Random { detail: String },
}

/// The contents of an accounts file.
#[derive(Clone, Serialize, Deserialize)]
pub struct Accounts {
    version: u32,
    /// Hex of 32 random bytes: the key of the session cookie and CSRF token MACs.
    secret: String,
    /// The generation the next added account or changed password gets.
    next_generation: u64,
    agents: Vec<Account>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.agents.iter().map(|agent| agent.name.as_str()).collect();
        f.debug_struct("Accounts").field("agents", &names).finish_non_exhaustive()
    }
}

impl Accounts {
    /// Creates an empty set of accounts with a new random secret.
    pub fn new() -> Result<Self, AccountsError> {
        let secret = random_bytes::<32>()?;
        Ok(Self { version: FORMAT_VERSION, secret: hex(&secret), next_generation: 1, agents: Vec::new() })
    }

    /// Reads the file, or returns `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, AccountsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(AccountsError::Read { path: path.to_owned(), source }),
        };
        Self::parse(&text, path).map(Some)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, AccountsError> {
        let invalid = |detail: String| AccountsError::Invalid { path: path.to_owned(), detail };
        let accounts: Self = serde_json::from_str(text).map_err(|error| invalid(error.to_string()))?;
        if accounts.version != FORMAT_VERSION {
            return Err(invalid(format!("version {} is not {FORMAT_VERSION}", accounts.version)));
        }
        if accounts.secret_bytes().is_none() {
            return Err(invalid("secret is not 64 hex digits".to_owned()));
        }
        for agent in &accounts.agents {
            check_name(agent.name.as_str()).map_err(|_| invalid(format!("agent name {:?} is not valid", agent.name.as_str())))?;
            PasswordHash::new(&agent.password_hash).map_err(|error| invalid(format!("password hash of {} is not a PHC string: {error}", agent.name)))?;
        }
        Ok(accounts)
    }

    /// Writes the file atomically (a temporary file renamed over it), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), AccountsError> {
        let write_error = |source| AccountsError::Write { path: path.to_owned(), source };
        let json = serde_json::to_string_pretty(self).expect("accounts serialise to JSON");
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }

        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let written = write_private(&temporary, json.as_bytes()).and_then(|()| std::fs::rename(&temporary, path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(write_error(source));
        }
        Ok(())
    }

    pub fn agents(&self) -> &[Account] {
        &self.agents
    }

    pub fn find(&self, name: &str) -> Option<&Account> {
        self.agents.iter().find(|agent| agent.name.as_str() == name)
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Adds an agent with a new password hash.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<&Account, AccountsError> {
        let name = check_name(name)?;
        if self.find(name.as_str()).is_some() {
            return Err(AccountsError::Exists { name: name.to_string() });
        }
        let password_hash = hash_password(password)?;
        let generation = self.take_generation();
        self.agents.push(Account { name, role, password_hash, generation });
        Ok(self.agents.last().expect("an agent was just added"))
    }

    /// Removes an agent. Its cookies stop working because its account is gone.
    pub fn remove(&mut self, name: &str) -> Result<Account, AccountsError> {
        let index = self.agents.iter().position(|agent| agent.name.as_str() == name);
        let index = index.ok_or_else(|| AccountsError::NotFound { name: name.to_owned() })?;
        Ok(self.agents.remove(index))
    }

    /// Sets a new password and a new generation, which signs the agent out everywhere.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), AccountsError> {
        let password_hash = hash_password(password)?;
        let generation = self.take_generation();
        let agent = self.agents.iter_mut().find(|agent| agent.name.as_str() == name);
        let agent = agent.ok_or_else(|| AccountsError::NotFound { name: name.to_owned() })?;
        agent.password_hash = password_hash;
        agent.generation = generation;
        Ok(())
    }

    /// Takes the next generation. Generations are never reused, so that an agent
    /// removed and added again does not get its old cookies back.
    fn take_generation(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    /// Checks a password against the agent's hash, and returns `None` for an
    /// unknown name or a wrong password. It is slow on purpose (argon2), so call
    /// it off the async threads, such as in `spawn_blocking`. An unknown name costs as much as a
    /// known one, so that timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&Account> {
        let account = self.find(name);
        let hash = account.map_or_else(|| dummy_hash().as_str(), |account| account.password_hash.as_str());
        let parsed = PasswordHash::new(hash).ok()?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        account.filter(|_| matches)
    }

    pub(crate) fn secret_bytes(&self) -> Option<[u8; 32]> {
        let bytes = self.secret.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut secret = [0u8; 32];
        for (index, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            secret[index] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(secret)
    }
}

/// Checks an agent name: 1 to 64 characters from `[A-Za-z0-9_.-]`.
pub fn check_name(name: &str) -> Result<AgentId, AccountsError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(AccountsError::InvalidName { name: crate::input::truncated(name) });
    }
    Ok(AgentId::new(name))
}

/// Checks the length of a new password.
pub fn check_password(password: &str) -> Result<(), AccountsError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountsError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountsError::PasswordTooLong);
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, AccountsError> {
    check_password(password)?;
    let salt = random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt).map_err(|error| AccountsError::Hash { detail: error.to_string() })?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt);
    Ok(hash.map_err(|error| AccountsError::Hash { detail: error.to_string() })?.to_string())
}

/// Returns a hash of a random password, which `verify` checks unknown names against.
fn dummy_hash() -> &'static String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let password = random_password().unwrap_or_else(|_| "unused-password".to_owned());
        hash_password(&password).unwrap_or_default()
    })
}

/// Generates a random password of 20 characters from letters and digits, for `lepton demo`.
pub fn random_password() -> Result<String, AccountsError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = random_bytes::<20>()?;
    // 256 % 56 != 0 leaves a slight bias, harmless for 20 characters from 56.
    Ok(bytes.iter().map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char).collect())
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AccountsError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| AccountsError::Random { detail: error.to_string() })?;
    Ok(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Identity of one version of the file on disk, used to notice edits cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self { modified: metadata.modified().ok(), len: metadata.len(), inode }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_name_accepts_charset_and_rejects_others() {
        assert!(check_name("alice.b-c_9").is_ok());
        for bad in ["", "a b", "a:b", "王", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn verify_accepts_the_password_and_rejects_others() -> Result<(), AccountsError> {
        let mut accounts = Accounts::new()?;
        accounts.add("alice", Role::Admin, "correct horse")?;

        assert!(accounts.verify("alice", "correct horse").is_some());
        assert!(accounts.verify("alice", "wrong horse!").is_none());
        assert!(accounts.verify("bob", "correct horse").is_none());
        Ok(())
    }

    #[test]
    fn generations_are_not_reused_after_remove() -> Result<(), AccountsError> {
        let mut accounts = Accounts::new()?;
        let first = accounts.add("alice", Role::Agent, "password-1")?.generation;
        accounts.remove("alice")?;
        let second = accounts.add("alice", Role::Agent, "password-1")?.generation;
        assert_ne!(first, second);
        Ok(())
    }

    #[test]
    fn save_and_load_round_trip_with_private_mode() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("lepton-accounts-{}", std::process::id()));
        let path = dir.join("agents.json");
        let mut accounts = Accounts::new()?;
        accounts.add("alice", Role::Admin, "password-1")?;

        accounts.save(&path)?;
        let loaded = Accounts::load(&path)?.ok_or("the saved file is missing")?;

        assert_eq!(loaded.find("alice").map(|agent| agent.role), Some(Role::Admin));
        assert_eq!(loaded.secret_bytes(), accounts.secret_bytes());
        #[cfg(unix)]
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions()) & 0o777, 0o600);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn load_rejects_a_bad_secret() {
        let text = r#"{"version":1,"secret":"abc","next_generation":1,"agents":[]}"#;
        assert!(matches!(Accounts::parse(text, Path::new("agents.json")), Err(AccountsError::Invalid { .. })));
    }
}
