// Turns a results file (bench/results/*.jsonl) into the markdown table of
// bench/README.md, with the targets of issue 9 next to each number.
// usage: node bench/report.mjs [FILE.jsonl ...]   (default: the newest full run)
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib/node.mjs';

const files = process.argv.slice(2);
if (files.length === 0) {
  const dir = join(ROOT, 'bench/results');
  const full = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl') && !f.includes('small') && !f.includes('profile'))
    .sort();
  files.push(join(dir, full.at(-1)));
}
for (const f of files)
  table(
    readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    f,
  );

function table(rows, file) {
  const SOKETI = { fan: '8.4-10', http: '42-55', conn: '3.8' };
  const UWS = { fan1k: '2.3', fan10k: '3.35', http: '16', conn: '1.4' };
  const sat = (r) => {
    const notes = [];
    if (r.generator_saturated) notes.push(`generator saturated (${r.generator_cpu_max})`);
    if (r.machine_saturated) notes.push(`machine busy ${Math.round(r.machine_busy * 100)}%`);
    return notes.join('; ') || `gen max ${r.generator_cpu_max ?? '?'}, machine ${Math.round((r.machine_busy ?? 0) * 100)}%`;
  };
  const lat = (l) => (l && l.n ? `p50 ${l.p50_ms} / p99 ${l.p99_ms} / max ${l.max_ms} ms` : '-');
  const ok = (v, limit) => (v === null || v === undefined ? '' : v <= limit ? ' ✅' : ' ❌');

  const out = [];
  out.push('| # | Scenario | Parameters | Result | Target (issue 9) | soketi / bare uWS | Generator / machine |');
  out.push('|---|---|---|---|---|---|---|');
  const machine = rows.find((r) => r.scenario === 'machine');
  for (const r of rows) {
    switch (r.scenario) {
      case 'conn': {
        const target = r.connections >= 19_000 ? `≤2 KB/conn${ok(r.rss_per_conn_kb, 2)}` : '-';
        out.push(
          `| 1 | idle connections | ${r.connections} sockets, ${r.channels} | **${r.rss_per_conn_kb} KB RSS/conn** ${r.heap_used_per_conn_kb === null ? '' : ` (heap ${r.heap_used_per_conn_kb} KB)`}; ${r.subscribed} subscribed in ${r.connect_subscribe_s} s (${r.connects_per_s}/s), ${r.failed} failed; node CPU ${r.node_cpu_ms_per_1k_connects} ms/1k connects | ${target} | ${SOKETI.conn} / ${UWS.conn} KB | ${sat(r)} |`,
        );
        break;
      }
      case 'fanout': {
        const limit = r.subscribers >= 10_000 ? 4.0 : 2.8;
        const max = r.load.startsWith('max');
        out.push(
          `| 2 | fan-out, ${max ? 'max rate' : 'fixed rate'} | ${r.subscribers} subs, ${r.load} | **${r.node_cpu_s_per_million} CPU-s/M**; ${r.publishes_per_s} pub/s, ${r.deliveries_per_s} deliveries/s; lost ${r.lost}; ${lat(r.latency)} | ${max ? `≤${limit} CPU-s/M${ok(r.node_cpu_s_per_million, limit)}, 0 lost${r.lost === 0 ? ' ✅' : ' ❌'}` : '(latency reference)'} | ${SOKETI.fan} / ${r.subscribers >= 10_000 ? UWS.fan10k : UWS.fan1k} | ${sat(r)} |`,
        );
        break;
      }
      case 'many-channels':
        out.push(
          `| 3 | many channels | ${r.sockets} sockets, own private channel each, random channel per event, ${r.http_connections} HTTP conns | **${r.node_cpu_s_per_million} CPU-s/M** (1 publish = 1 delivery, HTTP included); ${r.deliveries_per_s} deliveries/s; lost ${r.lost}; ${lat(r.latency)} | - | - | ${sat(r)} |`,
        );
        break;
      case 'http':
        out.push(
          `| 4 | HTTP publish, no subscribers | ${r.connections} keep-alive conns, ${r.body} | **${r.node_cpu_ms_per_1k_requests} ms CPU/1k req**; ${r.requests_per_s} req/s, ${r.errors} errors, node at ${Math.round(r.node_cpu_fraction * 100)}% of a core | ≤20 ms/1k${ok(r.node_cpu_ms_per_1k_requests, 20)} | ${SOKETI.http} / ${UWS.http} | ${sat(r)} |`,
        );
        break;
      case 'client-events':
        out.push(
          `| 5 | client events | ${r.sockets} sockets, ${r.channel} | **${r.node_cpu_s_per_million} CPU-s/M**; ${r.events_per_s} events/s, ${r.deliveries_per_s} deliveries/s; lost ${r.lost}; ${lat(r.latency)} | ≤3.2 CPU-s/M${ok(r.node_cpu_s_per_million, 3.2)} | - | ${sat(r)} |`,
        );
        break;
      case 'cross-node': {
        const fixed = r.load.startsWith('fixed');
        const u = r.uninterested_node;
        const target = fixed ? `≤3 CPU-s/M${ok(r.node_cpu_s_per_million, 3)}, p99 <8 ms${r.latency?.p99_ms < 8 ? ' ✅' : ' ❌'}` : '-';
        out.push(
          `| 6 | cross-node ${r.broker} | ${r.nodes} nodes, ${r.subscribers} subs on A, publish via B, ${r.load} | **${r.node_cpu_s_per_million} CPU-s/M (A+B: ${r.node_cpu_per_node_s.join(' + ')} s)**; ${r.deliveries_per_s} deliveries/s; lost ${r.lost}; ${lat(r.latency)}; uninterested node C: ${u.bus_channel_bytes} B channel traffic, ${u.bus_control_bytes} B control, rchar ${u.rchar_bytes} B | ${target} | - | ${sat(r)} |`,
        );
        break;
      }
      case 'churn':
        out.push(
          `| 7 | churn | ${r.kind}${r.members ? `, ${r.members} members (${r.churners} churning)` : `, ${r.concurrency} in parallel`} | **${r.cycles_per_s} cycles/s**; node CPU ${r.node_cpu_ms_per_1k_cycles} ms/1k cycles; ${r.failures} failures | - | - | ${sat(r)} |`,
        );
        break;
      case 'history':
        if (r.part === 'publish')
          out.push(
            `| 9 | history: HTTP publish, ${r.adapter} | ${r.history ? 'history on' : 'history off'} (${r.channel}), ${r.subscribers}, ${r.connections} conns, ${r.load}${r.round ? ` round ${r.round}` : ''} | **${r.node_cpu_ms_per_1k_requests} ms node CPU/1k req**${r.broker_cpu_ms_per_1k_requests !== undefined ? ` (+ redis ${r.broker_cpu_ms_per_1k_requests})` : ''}; ${r.requests_per_s} req/s, ${r.errors} errors; response ${lat(r.response_latency)}; delivery ${lat(r.delivery_latency)}; lost ${r.lost} | - | - | ${sat(r)} |`,
          );
        else if (r.part === 'replay')
          out.push(
            `| 9 | history: replay, ${r.adapter} | ${r.clients} client${r.clients > 1 ? 's at once' : ''}, ${r.events_per_resume} events each (${r.data_bytes} B data) | **${r.events_per_s_median} events/s** (median${r.resumes ? ` of ${r.resumes}, ${r.events_per_s_min}-${r.events_per_s_max}; ${r.ms_to_position_median} ms to position, first event after ${r.ms_to_first_event_median} ms` : ` of ${r.waves} waves, ${r.ms_wave_median} ms per wave`}); node CPU ${r.node_cpu_ms_per_1k_replayed} ms/1k replayed | - | - | - |`,
          );
        else if (r.part === 'redis-memory')
          for (const m of r.rounds)
            out.push(
              `| 9 | history: Redis memory | ${r.channels} channels, ${m.label} (${m.events} events, ${r.data_bytes} B data, max_messages ${r.max_messages}) | **${m.bytes_per_event} B used_memory per event** (${m.used_memory_since_start_per_kept_event} B per kept event); one stream: MEMORY USAGE ${m.stream_memory_usage_bytes} B (${m.stream_per_entry_bytes} B/entry, ${m.stream.radix_tree_keys} listpacks), meta hash ${m.meta_memory_usage_bytes} B; stored b=${m.stored_fields_bytes.b} B | - | - | - |`,
            );
        break;
      default:
        if (r.error) out.push(`| - | ${r.scenario} | - | ERROR: ${r.error.split('\n')[0]} | - | - | - |`);
    }
  }
  console.log(`\n### ${machine?.server ?? 'chorus'} (${file.replace(ROOT + '/', '')})\n`);
  console.log(
    `Machine: ${machine?.nproc} × ${machine?.model} @ ${machine?.mhz} MHz, ${machine?.memGb} GB, Linux ${machine?.kernel}, Node ${machine?.node}; ${machine?.server?.startsWith('bare') ? 'bench/baseline-uws.mjs' : `commit ${machine?.commit}`}; load at start ${machine?.load1_at_start}; ${machine?.duration_s} s windows\n`,
  );
  console.log(out.join('\n'));

  // idle-connection memory: slope between the two sizes, extrapolated
  for (const mode of ['one public channel per connection', 'one shared public channel']) {
    const c = rows.filter((r) => r.scenario === 'conn' && r.channels === mode).sort((a, b) => a.connections - b.connections);
    if (c.length < 2) continue;
    const [lo, hi] = [c[0], c.at(-1)];
    const dLo = (lo.rss_after_mb - lo.rss_before_mb) * 1024;
    const dHi = (hi.rss_after_mb - hi.rss_before_mb) * 1024;
    const slope = (dHi - dLo) / (hi.connections - lo.connections);
    const base = hi.rss_before_mb;
    const at = (n) => Math.round((base + (dLo + slope * (n - lo.connections)) / 1024) / 102.4) / 10;
    console.log(
      `\nMemory slope (${mode}): ${slope.toFixed(2)} KB per extra connection between ${lo.connections} and ${hi.connections}; ` +
        `extrapolated RSS ≈ ${at(100_000)} GB at 100k, ${at(1_000_000)} GB at 1M (base ${base} MB).`,
    );
  }
}
