import client from 'prom-client';

export interface AgentMetrics {
  calls: client.Counter;
  tokens: client.Counter<'direction'>;
  decisions: client.Counter<'tool' | 'action'>;
  dispatches: client.Counter<'outcome'>;
  failures: client.Counter<'reason'>;
  decisionSeconds: client.Histogram;
}

export function createAgentMetrics(registry: client.Registry): AgentMetrics {
  const registers = [registry];
  return {
    calls: new client.Counter({
      name: 'stripe_events_agent_calls_total',
      help: 'Messages API requests made by the agent loop',
      registers,
    }),
    tokens: new client.Counter({
      name: 'stripe_events_agent_tokens_total',
      help: 'Model tokens used by the agent loop',
      labelNames: ['direction'],
      registers,
    }),
    decisions: new client.Counter({
      name: 'stripe_events_agent_decisions_total',
      help: 'Decisions made, by tool and action',
      labelNames: ['tool', 'action'],
      registers,
    }),
    dispatches: new client.Counter({
      name: 'stripe_events_agent_dispatches_total',
      help: 'Decided tool calls by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    failures: new client.Counter({
      name: 'stripe_events_agent_failures_total',
      help: 'Failed attempts, by reason',
      labelNames: ['reason'],
      registers,
    }),
    decisionSeconds: new client.Histogram({
      name: 'stripe_events_agent_decision_seconds',
      help: 'Time for the model to decide one event',
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
  };
}
