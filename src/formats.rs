//! The formats the commands read: flisthub's own, and the 0-flist and fl files Zero-OS
//! nodes read, told apart by their first bytes ([`legacy::detect`]).

use std::sync::Arc;

use anyhow::{Context, Result};
use converter::LegacyFlist;

use crate::client::LocalFlist;

/// An flist named on the command line, as its format is read.
pub enum Opened {
    /// flisthub's own format, opened by each command with [`flist::Flist`] (whatever is
    /// none of the three formats goes this way too: the native reader says what is wrong).
    Native,
    /// A 0-flist or fl file, read whole (see [`LegacyFlist`]).
    Legacy(Arc<LegacyFlist>),
}

/// Tells the format of `flist` and reads it if it is a legacy one.
pub fn open(flist: &LocalFlist) -> Result<Opened> {
    match legacy::detect_file(&flist.path) {
        Ok(Some(format @ (legacy::Format::ZeroFlist | legacy::Format::Fl))) => {
            let opened = LegacyFlist::open(&flist.path, format, &legacy::Limits::default())
                .with_context(|| flist.shown.clone())?;
            Ok(Opened::Legacy(Arc::new(opened)))
        }
        _ => Ok(Opened::Native),
    }
}

/// The name of a legacy format, as the hub names it.
pub fn name(format: legacy::Format) -> &'static str {
    match format {
        legacy::Format::Native => "native",
        legacy::Format::ZeroFlist => "0-flist",
        legacy::Format::Fl => "fl",
    }
}
