//! `flisthub gc`: a garbage collection of a hub's chunk store, asked of the hub serving the
//! data directory (or run here when none does), or of a remote hub with an administrator's
//! token; prints the report.

use std::path::PathBuf;

use anyhow::Result;

use crate::client::{HubArgs, HubClient};
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// Delete nothing: report, and list, what would go.
    #[arg(long)]
    dry_run: bool,
    /// The hub's data directory (default: the configuration's server.data-dir).
    #[arg(long, value_name = "DIR", conflicts_with = "hub")]
    data_dir: Option<PathBuf>,
    /// A remote hub's URL, to ask it for the collection (with --token).
    #[arg(long, requires = "token")]
    hub: Option<String>,
    /// An administrator's token for --hub; `-` reads it from stdin.
    #[arg(long, requires = "hub")]
    token: Option<String>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, mut config: hub::Config, ui: &Ui) -> Result<()> {
    let (report, where_) = match &args.hub {
        Some(url) => {
            let client = HubClient::new(&HubArgs {
                hub: Some(url.clone()),
                token: args.token.clone(),
                repo: None,
            })?;
            (client.collect(args.dry_run).await?, url.clone())
        }
        None => {
            if let Some(dir) = args.data_dir {
                config.server.data_dir = Some(dir);
            }
            let (report, served) = hub::collect(&config, args.dry_run).await?;
            let dir = config.data_dir()?.display().to_string();
            let place = match served {
                true => format!("the hub serving {dir}"),
                false => dir,
            };
            (report, place)
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print(ui, &report, &where_);
    Ok(())
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
}
