//! `flisthub login --hub URL --token T`: checks the token against the hub and keeps both
//! for `push` (in a file only its owner can read).

use anyhow::{Context, Result, bail};

use crate::client::{Credentials, HubArgs, HubClient};
use crate::ui::Ui;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    hub: HubArgs,
}

pub async fn run(mut args: Args, ui: &Ui) -> Result<()> {
    if args.hub.hub.is_none() || args.hub.token.is_none() {
        bail!(
            "flisthub login needs --hub and --token (or FLISTHUB_HUB and FLISTHUB_TOKEN); --token - reads it from stdin"
        );
    }
    if args.hub.token.as_deref() == Some("-") {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the token from stdin")?;
        args.hub.token = Some(line.trim().to_owned());
    }
    let client = HubClient::new(&args.hub)?;
    let repository = client.whoami().await?;
    let credentials = Credentials {
        hub: client.url.clone(),
        token: args.hub.token.unwrap_or_default(),
        repo: args.hub.repo,
    };
    let path = credentials.save()?;
    ui.say(format!(
        "logged in to {} as {repository}; saved in {}",
        credentials.hub,
        path.display()
    ));
    Ok(())
}
