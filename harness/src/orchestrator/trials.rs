//! The order in which repeated cases run: trials interleaved, the case
//! order rotated by one per trial, so that a slow spell of the machine does
//! not always land on the same case.
//!
//! Trial 1 runs every case in scenario order; trial 2 runs the cases that
//! ask for a second trial (`repeat >= 2`) with their order rotated left by
//! one; trial `t` rotates by `t - 1`. A case with `repeat = 1` in a scenario
//! whose other cases repeat runs once, in trial 1.

/// One case run of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Index of the case in the scenario.
    pub case: usize,
    /// Trial number, from 1.
    pub trial: u32,
}

/// The schedule for cases asking for `repeats[i]` trials each (0 counts as 1).
pub(crate) fn schedule(repeats: &[u32]) -> Vec<Slot> {
    let trials = repeats.iter().copied().max().unwrap_or(0).max(1);
    let mut out = Vec::new();
    for trial in 1..=trials {
        let mut these: Vec<usize> = (0..repeats.len())
            .filter(|&i| repeats[i].max(1) >= trial)
            .collect();
        if !these.is_empty() {
            let by = (trial as usize - 1) % these.len();
            these.rotate_left(by);
        }
        out.extend(these.into_iter().map(|case| Slot { case, trial }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(repeats: &[u32]) -> Vec<(usize, u32)> {
        schedule(repeats)
            .into_iter()
            .map(|s| (s.case, s.trial))
            .collect()
    }

    #[test]
    fn one_trial_is_the_scenario_order() {
        assert_eq!(order(&[1, 1, 1]), [(0, 1), (1, 1), (2, 1)]);
        assert_eq!(order(&[]), []);
    }

    #[test]
    fn trials_are_interleaved_and_rotated_by_one_each() {
        assert_eq!(
            order(&[3, 3, 3]),
            [
                (0, 1),
                (1, 1),
                (2, 1),
                (1, 2),
                (2, 2),
                (0, 2),
                (2, 3),
                (0, 3),
                (1, 3)
            ]
        );
        // The rotation wraps around after as many trials as cases.
        assert_eq!(
            order(&[3, 3]),
            [(0, 1), (1, 1), (1, 2), (0, 2), (0, 3), (1, 3)]
        );
    }

    #[test]
    fn a_case_repeated_less_drops_out_of_the_later_trials() {
        assert_eq!(
            order(&[2, 1, 3]),
            [(0, 1), (1, 1), (2, 1), (2, 2), (0, 2), (2, 3)]
        );
        // Every case runs exactly its number of trials.
        let s = schedule(&[2, 1, 3, 0]);
        for (i, want) in [2, 1, 3, 1].into_iter().enumerate() {
            assert_eq!(s.iter().filter(|x| x.case == i).count(), want, "case {i}");
        }
    }
}
