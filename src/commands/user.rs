//! `flisthub user`: the hub's local accounts, for people who log in on its web pages. The
//! password is read from standard input (one line), so it never shows in a process list.

use std::io::BufRead;

use anyhow::{Context, Result};

use super::token::HubArgs;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add an account (the first one added is an administrator); its password is read
    /// from standard input.
    Add {
        name: String,
        /// Another repository the account may act as. Repeatable.
        #[arg(long, value_name = "REPOSITORY")]
        memberof: Vec<String>,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Change an account's password (read from standard input); its sessions end.
    Passwd {
        name: String,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Remove an account; its sessions end.
    Del {
        name: String,
        #[command(flatten)]
        hub: HubArgs,
    },
}

pub fn run(command: Command, mut config: hub::Config) -> Result<()> {
    let (Command::Add { hub, .. } | Command::Passwd { hub, .. } | Command::Del { hub, .. }) =
        &command;
    if let Some(dir) = &hub.data_dir {
        config.server.data_dir = Some(dir.clone());
    }
    let accounts = hub::accounts(&config)?;
    match command {
        Command::Add { name, memberof, .. } => {
            let account = accounts.add(&name, &read_password()?, &memberof)?;
            eprintln!(
                "added account {}{}",
                account.name,
                if account.admin {
                    " (the first: an administrator; a running hub sees this at its next start)"
                } else {
                    ""
                }
            );
        }
        Command::Passwd { name, .. } => {
            accounts.set_password(&name, &read_password()?)?;
            eprintln!("password of {name} changed; its sessions ended");
        }
        Command::Del { name, .. } => {
            accounts.delete(&name)?;
            eprintln!("account {name} removed; its sessions ended");
        }
    }
    Ok(())
}

fn read_password() -> Result<String> {
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
