//! Loops of steps that never wait for the customer.
//!
//! The steps of all flows form a graph: a step leads to the next one when it falls
//! through, and to the steps its targets name (a step id of its own flow, or the first
//! step of another flow). An `ask` step waits for the customer's answer and so ends the
//! turn. Nothing in a cycle of steps without an `ask` step waits, so once the flow
//! goes round it, it can go round until the engine's per-turn step limit stops it.
//! The check finds the strongly connected components of the graph without the edges
//! that leave `ask` steps.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bot_core::bot::{Flow, StepKind, Target};
use bot_core::FlowId;

use crate::convert::Converter;
use crate::reach::exits;

/// The steps of every flow, numbered in flow order, and where each step can go next.
struct Graph<'f> {
    /// The flow and the index of the step of each node.
    steps: Vec<(&'f FlowId, usize)>,
    edges: Vec<Vec<usize>>,
}

/// Reports one error for each loop of steps with no `ask` step, at a step that jumps
/// back into the loop. Flows that failed to convert are left out.
pub(crate) fn report_loops_without_ask(converter: &mut Converter<'_, '_>, flows: &BTreeMap<FlowId, Flow>) {
    let graph = Graph::new(flows);
    for component in strongly_connected(&graph.edges) {
        let is_loop = component.len() > 1 || graph.edges[component[0]].contains(&component[0]);
        if !is_loop {
            continue;
        }
        let node = graph.closing_step(&component);
        let cycle = graph.shortest_cycle(node, &component);
        let (flow, index) = graph.steps[node];
        let Some(loc) = converter.step_locs.get(flow.as_str()).and_then(|locs| locs.get(index)).copied() else { continue };

        let labels: Vec<String> = cycle.iter().map(|&n| graph.label(flows, n, &cycle)).collect();
        let message = format!(
            "steps loop without an `ask` step ({}), so the loop never waits for the customer and the engine stops the flow when it reaches its limit of steps per turn; put an `ask` step in the loop or leave it with `end` or `handoff`",
            labels.join(" → ")
        );
        converter.cx.error(loc, message);
    }
}

impl<'f> Graph<'f> {
    fn new(flows: &'f BTreeMap<FlowId, Flow>) -> Self {
        let mut first_node: HashMap<&str, usize> = HashMap::new();
        let mut step_nodes: HashMap<(&str, &str), usize> = HashMap::new();
        let mut steps = Vec::new();
        for (flow_id, flow) in flows {
            first_node.insert(flow_id.as_str(), steps.len());
            for (index, step) in flow.steps.iter().enumerate() {
                if let Some(id) = &step.id {
                    step_nodes.entry((flow_id.as_str(), id.as_str())).or_insert(steps.len());
                }
                steps.push((flow_id, index));
            }
        }

        let mut edges = vec![Vec::new(); steps.len()];
        for (node, &(flow_id, index)) in steps.iter().enumerate() {
            let flow = &flows[flow_id];
            let kind = &flow.steps[index].kind;
            if matches!(kind, StepKind::Ask(_)) {
                continue;
            }
            let (targets, falls_through) = exits(kind);
            for target in targets {
                let next = match target {
                    Target::Step(id) => step_nodes.get(&(flow_id.as_str(), id.as_str())).copied(),
                    Target::Flow(other) => first_node.get(other.as_str()).copied(),
                    Target::Handoff => None,
                };
                edges[node].extend(next);
            }
            if falls_through && index + 1 < flow.steps.len() {
                edges[node].push(node + 1);
            }
        }
        Self { steps, edges }
    }

    /// Picks the step to report a loop at: the first one, in flow and step order, that
    /// jumps back to an earlier step of its flow or to another flow within the loop.
    fn closing_step(&self, component: &[usize]) -> usize {
        let mut sorted = component.to_vec();
        sorted.sort_unstable();
        let jumps_back = |node: usize| {
            self.edges[node].iter().any(|&next| component.contains(&next) && (next <= node || self.steps[next].0 != self.steps[node].0))
        };
        sorted.iter().copied().find(|&node| jumps_back(node)).unwrap_or(sorted[0])
    }

    /// Returns the nodes of a shortest cycle from `start` back to it, within `component`,
    /// beginning and ending with `start`.
    fn shortest_cycle(&self, start: usize, component: &[usize]) -> Vec<usize> {
        let mut came_from: HashMap<usize, usize> = HashMap::new();
        let mut pending = VecDeque::from([start]);
        while let Some(node) = pending.pop_front() {
            for &next in &self.edges[node] {
                if next == start {
                    let mut path = vec![start, node];
                    let mut at = node;
                    while let Some(&before) = came_from.get(&at) {
                        path.push(before);
                        at = before;
                    }
                    path.reverse();
                    return path;
                }
                if component.contains(&next) && !came_from.contains_key(&next) {
                    came_from.insert(next, node);
                    pending.push_back(next);
                }
            }
        }
        vec![start]
    }

    /// Names a step for a message: its id, else its position, with its flow when the
    /// loop spans several flows.
    fn label(&self, flows: &BTreeMap<FlowId, Flow>, node: usize, cycle: &[usize]) -> String {
        let (flow_id, index) = self.steps[node];
        let step = match &flows[flow_id].steps[index].id {
            Some(id) => format!("`{id}`"),
            None => format!("step {}", index + 1),
        };
        let one_flow = cycle.iter().all(|&other| self.steps[other].0 == flow_id);
        if one_flow {
            step
        } else {
            format!("{step} of `{flow_id}`")
        }
    }
}

/// Returns the strongly connected components of a graph, with Tarjan's algorithm
/// written with an explicit stack so that a long chain of steps cannot overflow the
/// call stack.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let count = edges.len();
    let mut order = vec![UNVISITED; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut next_order = 0;
    let mut components = Vec::new();

    for root in 0..count {
        if order[root] != UNVISITED {
            continue;
        }
        let mut work = vec![(root, 0)];
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;

        while let Some(&(node, edge)) = work.last() {
            if let Some(&next) = edges[node].get(edge) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if order[next] == UNVISITED {
                    order[next] = next_order;
                    low[next] = next_order;
                    next_order += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    work.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(order[next]);
                }
                continue;
            }

            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == order[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut components: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        for component in &mut components {
            component.sort_unstable();
        }
        components.sort();
        components
    }

    #[test]
    fn strongly_connected_finds_cycle_and_singletons() -> anyhow::Result<()> {
        let edges = vec![vec![1], vec![2], vec![0, 3], vec![]];
        assert_eq!(sorted(strongly_connected(&edges)), vec![vec![0, 1, 2], vec![3]]);
        Ok(())
    }

    #[test]
    fn strongly_connected_handles_long_chain() -> anyhow::Result<()> {
        let count = 200_000;
        let edges: Vec<Vec<usize>> = (0..count).map(|i| vec![(i + 1) % count]).collect();
        assert_eq!(strongly_connected(&edges).len(), 1);
        Ok(())
    }
}
