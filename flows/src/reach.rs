//! Reachability of a flow's steps: a walk from the first step along fall-through
//! and jumps to step ids.

use std::collections::HashMap;

use bot_core::bot::{Step, StepKind, Target};

/// Returns the index of the first step of each run of unreachable steps. A step that could
/// not be converted (`None`) is assumed to fall through and to jump to every step with
/// an id, so a broken step never makes another look unreachable.
pub(crate) fn unreachable_steps(steps: &[Option<Step>]) -> Vec<usize> {
    let ids: HashMap<&str, usize> = (0..steps.len()).rev().filter_map(|i| step_id(steps, i).map(|id| (id, i))).collect();
    let mut reached = vec![false; steps.len()];
    let mut pending = vec![0];
    while let Some(index) = pending.pop() {
        if index >= steps.len() || reached[index] {
            continue;
        }
        reached[index] = true;
        pending.extend(successors(steps, &ids, index));
    }
    (0..steps.len()).filter(|&i| !reached[i] && (i == 0 || reached[i - 1])).collect()
}

fn successors(steps: &[Option<Step>], ids: &HashMap<&str, usize>, index: usize) -> Vec<usize> {
    let Some(step) = &steps[index] else {
        let mut all: Vec<usize> = ids.values().copied().collect();
        all.push(index + 1);
        return all;
    };
    let (targets, falls_through) = exits(&step.kind);
    let mut next: Vec<usize> = targets.into_iter().filter_map(|target| jump_index(ids, target)).collect();
    if falls_through {
        next.push(index + 1);
    }
    next
}

/// Returns the targets a step may jump to, and whether it may go on to the next step.
pub(crate) fn exits(kind: &StepKind) -> (Vec<&Target>, bool) {
    let mut targets: Vec<&Target> = Vec::new();
    let falls_through = match kind {
        StepKind::Say(_) => true,
        StepKind::Ask(ask) => {
            targets.extend(&ask.on_exhausted);
            true
        }
        StepKind::Branch(arms) => {
            targets.extend(arms.iter().map(|arm| &arm.target));
            !arms.iter().any(|arm| arm.condition.is_none())
        }
        StepKind::Http(http) => {
            targets.extend(http.on_status.values());
            targets.extend(&http.on_error);
            true
        }
        StepKind::Knowledge { on_miss, .. } => {
            targets.extend(on_miss);
            true
        }
        StepKind::Goto(target) => {
            targets.push(target);
            false
        }
        StepKind::Handoff { .. } | StepKind::End => false,
    };
    (targets, falls_through)
}

fn step_id(steps: &[Option<Step>], index: usize) -> Option<&str> {
    steps[index].as_ref()?.id.as_ref().map(|id| id.as_str())
}

fn jump_index(ids: &HashMap<&str, usize>, target: &Target) -> Option<usize> {
    let Target::Step(id) = target else { return None };
    ids.get(id.as_str()).copied()
}

#[cfg(test)]
mod tests {
    use bot_core::{ResponseId, StepId};

    use super::*;

    fn say(id: Option<&str>) -> Option<Step> {
        Some(Step { id: id.map(StepId::new), kind: StepKind::Say(ResponseId::new("r")) })
    }

    fn plain(kind: StepKind) -> Option<Step> {
        Some(Step { id: None, kind })
    }

    #[test]
    fn unreachable_reports_step_after_end() -> anyhow::Result<()> {
        let steps = vec![say(None), plain(StepKind::End), say(None), say(None)];
        assert_eq!(unreachable_steps(&steps), vec![2]);
        Ok(())
    }

    #[test]
    fn unreachable_accepts_jump_target_after_goto() -> anyhow::Result<()> {
        let goto = plain(StepKind::Goto(Target::Step(StepId::new("later"))));
        let steps = vec![goto, say(None), say(Some("later"))];
        assert_eq!(unreachable_steps(&steps), vec![1]);
        Ok(())
    }

    #[test]
    fn unreachable_counts_jumps_from_unreachable_steps_as_nothing() -> anyhow::Result<()> {
        let jump = plain(StepKind::Goto(Target::Step(StepId::new("b"))));
        let steps = vec![plain(StepKind::End), jump, say(Some("b"))];
        assert_eq!(unreachable_steps(&steps), vec![1]);
        Ok(())
    }

    #[test]
    fn unreachable_trusts_broken_steps() -> anyhow::Result<()> {
        let steps = vec![None, plain(StepKind::End), say(Some("x"))];
        assert!(unreachable_steps(&steps).is_empty());
        Ok(())
    }
}
