use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Mint a token; it is printed alone on standard output.
    Create {
        /// The user the token is for: the repository it writes to.
        #[arg(long)]
        user: String,
        /// Another repository the token may act as (with the `active-user` cookie).
        /// Repeatable.
        #[arg(long, value_name = "REPOSITORY")]
        memberof: Vec<String>,
        /// Lifetime, such as 30d or 12h (default: auth.token-ttl).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// A note kept with the token, shown by `token list`.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// The tokens this hub minted.
    List {
        /// As JSON, one array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Revoke a token: the id of one minted here, or any token given whole (a JWT of a
    /// configured issuer, a 0-hub token); or, with --user, every token of a user issued
    /// until now.
    Revoke {
        // 0-hub tokens are base64 and may start with `-`.
        #[arg(
            required_unless_present = "user",
            conflicts_with = "user",
            allow_hyphen_values = true
        )]
        token: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        hub: HubArgs,
    },
}

#[derive(clap::Args)]
pub struct HubArgs {
    /// The hub's data directory (default: the configuration's server.data-dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn run(command: Command, mut config: hub::Config) -> Result<()> {
    let data_dir = match &command {
        Command::Create { hub, .. } | Command::List { hub, .. } | Command::Revoke { hub, .. } => {
            hub.data_dir.clone()
        }
    };
    if let Some(dir) = data_dir {
        config.server.data_dir = Some(dir);
    }
    let ttl_default = config.auth.token_ttl;
    let tokens = hub::tokens(&config)?;
    match command {
        Command::Create {
            user,
            memberof,
            ttl,
            note,
            ..
        } => {
            let (record, token) = tokens.create(
                &user,
                &memberof,
                ttl.unwrap_or(ttl_default),
                note.as_deref(),
            )?;
            eprintln!(
                "minted token {} for {}, valid until {}",
                record.id,
                record.user,
                show_time(record.expires)
            );
            println!("{token}");
        }
        Command::List { json, .. } => {
            let list = tokens.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let mut rows = vec![
                [
                    "ID", "USER", "MEMBEROF", "CREATED", "EXPIRES", "STATE", "NOTE",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for t in list {
                let state = match t.revoked {
                    Some(at) => format!("revoked {}", show_time(at)),
                    None if t.expires <= now => "expired".into(),
                    None => "valid".into(),
                };
                rows.push(vec![
                    t.id,
                    t.user,
                    t.memberof.join(","),
                    show_time(t.created),
                    show_time(t.expires),
                    state,
                    t.note.unwrap_or_default(),
                ]);
            }
            print!("{}", crate::ui::columns(&rows));
        }
        Command::Revoke { token, user, .. } => match (token, user) {
            (_, Some(user)) => {
                let n = tokens.revoke_user(&user)?;
                eprintln!("revoked every token of {user} issued until now ({n} minted here)");
            }
            (Some(token), None) => {
                let what = tokens.revoke(&token)?;
                eprintln!("revoked {what}");
            }
            (None, None) => anyhow::bail!("name a token, or --user"),
        },
    }
    Ok(())
}

fn show_time(secs: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
