// The young generation held at a size (box/young-generation.ts): each case runs in a child
// process of its own, since V8's flags are the whole process's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { operatorChoseSemiSpace } from '../src/box/young-generation.js';

const MODULE = new URL('../src/box/young-generation.js', import.meta.url).href;
const MB = 2 ** 20;

/**
 * Runs `body` after objects that survive their scavenges were allocated in turns of the event
 * loop (as connections arrive), and returns what it printed as JSON.
 */
function run(body: string, nodeArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  const script = `
    import { holdYoungGeneration, youngGenerationBytes } from ${JSON.stringify(MODULE)};
    const keep = [];
    const survivors = async (turns) => {
      for (let t = 0; t < turns; t++) {
        for (let i = 0; i < 5000; i++) keep.push({ a: i, b: 'x' + i, c: [i] });
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    ${body}
  `;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

describe('the young generation held', () => {
  it('grows no further than the size held while surviving objects pile up, and (as V8 alone would) past it once let go', () => {
    const out = run(`
      const release = holdYoungGeneration(${2 * MB});
      await survivors(80);
      const held = youngGenerationBytes();
      release();
      await survivors(80);
      console.log(JSON.stringify({ held, released: youngGenerationBytes() }));
    `);
    assert.ok((out.held as number) <= 4 * MB, `held at ${out.held} bytes`);
    assert.ok((out.released as number) > 4 * MB, `let go: ${out.released} bytes`);
  });

  it("keeps the operator's own semi-space flag, on the command line or in NODE_OPTIONS", () => {
    for (const [args, env] of [
      [['--max-semi-space-size=4'], {}],
      [[], { NODE_OPTIONS: '--max-semi-space-size=4' }],
    ] as const) {
      const out = run(
        `const release = holdYoungGeneration(${2 * MB}); await survivors(80);
         console.log(JSON.stringify({ held: release !== null, size: youngGenerationBytes() }));`,
        [...args],
        env,
      );
      assert.equal(out.held, false);
      assert.ok((out.size as number) > 4 * MB, `${out.size} bytes`);
    }
  });

  it('tells the flags that choose the size from the rest', () => {
    assert.equal(operatorChoseSemiSpace(['--max-semi-space-size=8'], ''), true);
    assert.equal(operatorChoseSemiSpace(['--semi_space-growth_factor=3'], '--enable-source-maps'), true);
    assert.equal(operatorChoseSemiSpace([], '--enable-source-maps --max-semi-space-size=4'), true);
    assert.equal(operatorChoseSemiSpace(['--max-old-space-size=4096'], '--max-semi-space-sizes'), false);
    assert.equal(operatorChoseSemiSpace([], ''), false);
  });
});
