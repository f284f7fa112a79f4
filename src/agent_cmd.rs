//! `lepton agent`: the console's agent accounts in the accounts file, and the
//! choice of that file for `lepton serve` and `lepton demo`.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lepton_web::console::{accounts, Accounts, Role};

use crate::app::BotPaths;

/// The environment variable that names the accounts file (read by the command line).
pub const AGENTS_FILE_ENV: &str = "LEPTON_AGENTS_FILE";

/// The accounts file's name inside the data folder.
pub const AGENTS_FILE_NAME: &str = "agents.json";

/// What `lepton agent` does.
#[derive(Clone, Debug)]
pub enum AgentCommand {
    Add { name: String, admin: bool, password_stdin: bool },
    List,
    Remove { name: String },
    Passwd { name: String, password_stdin: bool },
}

/// Returns the accounts file: `--agents` (or [`AGENTS_FILE_ENV`]), else `agents.json` in the data folder.
pub fn accounts_file(explicit: Option<&Path>, paths: &BotPaths) -> PathBuf {
    match explicit {
        Some(path) => path.to_owned(),
        None => paths.data_dir.join(AGENTS_FILE_NAME),
    }
}

/// Runs one `lepton agent` command on the accounts file at `path`.
pub fn run(command: &AgentCommand, path: &Path) -> anyhow::Result<()> {
    let load = || -> anyhow::Result<Accounts> { Ok(Accounts::load(path)?.unwrap_or(Accounts::new()?)) };
    match command {
        AgentCommand::Add { name, admin, password_stdin } => {
            let mut accounts = load()?;
            accounts::check_name(name)?;
            if accounts.find(name).is_some() {
                bail!("agent {name} exists already in {}: change the password with `lepton agent passwd {name}`", path.display());
            }
            let password = read_new_password(name, *password_stdin)?;
            let role = if *admin { Role::Admin } else { Role::Agent };
            accounts.add(name, role, &password)?;
            accounts.save(path)?;
            println!("added {} {name} to {}", role.as_str(), path.display());
        }
        AgentCommand::List => {
            let Some(accounts) = Accounts::load(path)? else {
                println!("no accounts file at {}: add an agent with `lepton agent add NAME`", path.display());
                return Ok(());
            };
            for agent in accounts.agents() {
                println!("{}\t{}", agent.name, agent.role.as_str());
            }
        }
        AgentCommand::Remove { name } => {
            let mut accounts = Accounts::load(path)?.with_context(|| format!("no accounts file at {}", path.display()))?;
            accounts.remove(name)?;
            accounts.save(path)?;
            println!("removed {name} from {}; their console sessions have ended", path.display());
        }
        AgentCommand::Passwd { name, password_stdin } => {
            let mut accounts = Accounts::load(path)?.with_context(|| format!("no accounts file at {}", path.display()))?;
            if accounts.find(name).is_none() {
                bail!("no agent named {name} in {}: `lepton agent list` shows the agents", path.display());
            }
            let password = read_new_password(name, *password_stdin)?;
            accounts.set_password(name, &password)?;
            accounts.save(path)?;
            println!("changed the password of {name}; their other console sessions have ended");
        }
    }
    Ok(())
}

/// Reads a new password: typed twice without echo on a terminal, else the
/// first line of standard input.
fn read_new_password(name: &str, from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        accounts::check_password(&password)?;
        return Ok(password);
    }

    let password = rpassword::prompt_password(format!("password for {name}: ")).context("cannot read the password from the terminal")?;
    accounts::check_password(&password)?;
    let again = rpassword::prompt_password("the same password again: ").context("cannot read the password from the terminal")?;
    if again != password {
        bail!("the passwords differ; nothing was changed");
    }
    Ok(password)
}

/// For `lepton demo`: when the accounts file does not exist, creates it with
/// an admin `demo` and a random password, and returns that password.
pub fn ensure_demo_account(path: &Path) -> anyhow::Result<Option<String>> {
    if Accounts::load(path)?.is_some() {
        return Ok(None);
    }
    let password = accounts::random_password()?;
    let mut accounts = Accounts::new()?;
    accounts.add("demo", Role::Admin, &password)?;
    accounts.save(path)?;
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_account_is_created_once() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("lepton-demo-account-{}", std::process::id()));
        let path = dir.join(AGENTS_FILE_NAME);

        let first = ensure_demo_account(&path)?;
        let second = ensure_demo_account(&path)?;
        let accounts = Accounts::load(&path)?.context("no accounts file")?;

        assert!(first.is_some());
        assert_eq!(second, None);
        assert!(accounts.verify("demo", first.as_deref().unwrap_or_default()).is_some());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn explicit_file_wins_over_the_data_folder() {
        let paths = BotPaths::new(Path::new("bot"), None);
        assert_eq!(accounts_file(Some(Path::new("x.json")), &paths), PathBuf::from("x.json"));
    }
}
