//! `flisthub gc`: a garbage collection of a hub's chunk store, asked of the hub serving the
//! data directory (or run here when none does), or of a remote hub with an administrator's
//! token; prints the report.

use std::path::PathBuf;

use anyhow::Result;

use crate::client::{HubArgs, HubClient};
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    place: Place,
    /// Delete nothing: report, and list, what would go.
    #[arg(long)]
    dry_run: bool,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

/// Where a maintenance run (`gc`, `retention`, `check`) happens: on a data directory
/// (asked of the hub serving it, or run here), or on a remote hub.
#[derive(clap::Args)]
pub struct Place {
    /// The hub's data directory (default: the configuration's server.data-dir).
    #[arg(long, value_name = "DIR", conflicts_with = "hub")]
    data_dir: Option<PathBuf>,
    /// A remote hub's URL, to ask it for the run (with --token).
    #[arg(long, requires = "token")]
    hub: Option<String>,
    /// An administrator's token for --hub; `-` reads it from stdin.
    #[arg(long, requires = "hub")]
    token: Option<String>,
}

/// Where the run happens.
pub enum Target {
    Remote(HubClient, String),
    Local(Box<hub::Config>),
}

impl Place {
    /// The client of the remote hub, or the configuration with the data directory asked.
    pub fn target(&self, mut config: hub::Config) -> Result<Target> {
        Ok(match &self.hub {
            Some(url) => Target::Remote(
                HubClient::new(&HubArgs {
                    hub: Some(url.clone()),
                    token: self.token.clone(),
                    repo: None,
                })?,
                url.clone(),
            ),
            None => {
                if let Some(dir) = &self.data_dir {
                    config.server.data_dir = Some(dir.clone());
                }
                Target::Local(Box::new(config))
            }
        })
    }
}

/// How a report names where the run happened.
pub fn local_place(config: &hub::Config, served: bool) -> Result<String> {
    let dir = config.data_dir()?.display().to_string();
    Ok(match served {
        true => format!("the hub serving {dir}"),
        false => dir,
    })
}

/// Prints a run's report: as JSON, or as `print` words it.
pub fn show<R: serde::Serialize>(json: bool, report: &R, print: impl FnOnce(&R)) -> Result<()> {
    match json {
        true => println!("{}", serde_json::to_string_pretty(report)?),
        false => print(report),
    }
    Ok(())
}

pub async fn run(args: Args, config: hub::Config, ui: &Ui) -> Result<()> {
    let dry_run = args.dry_run;
    let (report, where_) = match args.place.target(config)? {
        Target::Remote(client, url) => (client.collect(dry_run).await?, url),
        Target::Local(config) => {
            let (report, served) = hub::collect(&config, dry_run).await?;
            (report, local_place(&config, served)?)
        }
    };
    show(args.json, &report, |report| print(ui, report, &where_))
}

fn print(ui: &Ui, report: &hub::GcReport, where_: &str) {
    let verb = if report.dry_run {
        "would sweep"
    } else {
        "swept"
    };
    for key in &report.would_go {
        println!("{key}");
    }
    ui.say(format!(
        "garbage collection of {where_}{}: {} flist files marked, in {:.1}s (grace {})",
        if report.dry_run { " (dry run)" } else { "" },
        ui::count(report.files_marked),
        report.duration_ms as f64 / 1000.0,
        humantime::format_duration(std::time::Duration::from_secs(report.grace_seconds)),
    ));
    for backend in &report.backends {
        let line = |what: &str, t: &hub::Tally| {
            format!(
                "  {what}: {} marked ({}), {verb} {} ({}), {} kept by the grace period ({})",
                ui::count(t.marked.count),
                ui::bytes(t.marked.bytes),
                ui::count(t.swept.count),
                ui::bytes(t.swept.bytes),
                ui::count(t.kept_by_grace.count),
                ui::bytes(t.kept_by_grace.bytes),
            )
        };
        ui.say(format!("{} (space {}):", backend.location, backend.space));
        ui.say(line("chunks", &backend.chunks));
        match &backend.blocks_skipped {
            Some(why) => ui.say(format!("  blocks: not collected: {why}")),
            None => ui.say(line("blocks", &backend.blocks)),
        }
    }
    let files = &report.unreferenced_files;
    ui.say(format!(
        "flist files no entry names: {verb} {} ({}), {} kept by the grace period ({})",
        ui::count(files.swept.count),
        ui::bytes(files.swept.bytes),
        ui::count(files.kept_by_grace.count),
        ui::bytes(files.kept_by_grace.bytes),
    ));
}
