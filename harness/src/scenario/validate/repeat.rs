//! `repeat = N`: how many trials of a case to run, written at the top level,
//! in `[run]` or in a `[[case]]` (the case's own wins).

use toml::Spanned;

use super::Ctx;
use crate::scenario::raw::RawScenario;

/// Most trials a case may ask for (a bound on the run's length).
pub(super) const MAX_REPEAT: u32 = 100;

/// The scenario-wide `repeat` (top level or `[run]`, not both), 1 when absent.
pub(super) fn scenario_repeat(ctx: &mut Ctx<'_>, raw: &RawScenario) -> u32 {
    let in_run = raw.run.as_ref().and_then(|r| r.get_ref().repeat.as_ref());
    match (&raw.repeat, in_run) {
        (Some(top), Some(_)) => {
            ctx.err(
                top.span(),
                "repeat",
                "repeat is set both here and in [run]; set it once",
            );
            1
        }
        (Some(r), None) => repeat(ctx, r, "repeat"),
        (None, Some(r)) => repeat(ctx, r, "run.repeat"),
        (None, None) => 1,
    }
}

/// One `repeat` value: 1..=[`MAX_REPEAT`] (1 after an error, reported).
pub(super) fn repeat(ctx: &mut Ctx<'_>, v: &Spanned<i64>, field: &str) -> u32 {
    let n = *v.get_ref();
    match u32::try_from(n) {
        Ok(n @ 1..=MAX_REPEAT) => n,
        _ => {
            ctx.err(
                v.span(),
                field,
                format!("must be a whole number of trials from 1 to {MAX_REPEAT}, found {n}"),
            );
            1
        }
    }
}
