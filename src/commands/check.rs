//! `flisthub check`: an integrity scrub of a hub's published flists (their chunks there,
//! and with `--deep` sound; a router's replicas repaired), asked of the hub serving the
//! data directory (or run here when none does), or of a remote hub with an administrator's
//! token; prints the report, and fails when some flist is left with chunks missing or
//! damaged.

use anyhow::{Result, bail};

use super::gc::{Place, Target, local_place, show};
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    place: Place,
    /// Read, decode and verify every chunk, rather than ask whether it is there.
    #[arg(long)]
    deep: bool,
    /// The flists of this repository only.
    #[arg(long, value_name = "REPO")]
    repo: Option<String>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, config: hub::Config, ui: &Ui) -> Result<()> {
    let only = args.repo.as_deref();
    let (report, where_) = match args.place.target(config)? {
        Target::Remote(client, url) => (client.scrub(only, args.deep).await?, url),
        Target::Local(config) => {
            let (report, served) = hub::scrub(&config, only, args.deep).await?;
            (report, local_place(&config, served)?)
        }
    };
    show(args.json, &report, |report| print(ui, report, &where_))?;
    if report.flists_damaged > 0 {
        bail!(
            "{} flists have chunks missing or damaged with no sound copy to repair from",
            ui::count(report.flists_damaged)
        );
    }
    Ok(())
}

fn print(ui: &Ui, report: &hub::ScrubReport, where_: &str) {
    // What goes on stdout: one line per flist affected; the rest is said.
    for file in &report.files {
        let state = match file.missing + file.damaged {
            0 => "repaired",
            _ => "damaged",
        };
        let names = match file.flists.is_empty() {
            true => file.sha256.clone(),
            false => file.flists.join(" "),
        };
        println!("{state} {names}");
        for problem in &file.problems {
            let repaired = if problem.repaired { " (repaired)" } else { "" };
            ui.say(format!("  {} {}{repaired}", problem.key, problem.fault));
        }
    }
    ui.say(format!(
        "{} check of {where_}{}: {} flists, {} chunks, in {:.1}s",
        if report.deep { "deep" } else { "existence" },
        report
            .repository
            .as_ref()
            .map_or(String::new(), |r| format!(" (repository {r})")),
        ui::count(report.flists_checked),
        ui::count(report.chunks_checked),
        report.duration_ms as f64 / 1000.0,
    ));
    ui.say(format!(
        "  {} missing, {} damaged: {} repaired, {} lost; {} flists damaged, {} repaired",
        ui::count(report.missing),
        ui::count(report.damaged),
        ui::count(report.repaired),
        ui::count(report.lost),
        ui::count(report.flists_damaged),
        ui::count(report.flists_repaired),
    ));
}
