/**
 * CUDA graphs through the driver API: capture the work a function issues on a context's stream
 * (cuStreamBeginCapture … cuStreamEndCapture, instantiated once), launch it, destroy it. The
 * GraphRuntime that pass-tape.ts drives; null when the driver has no graph calls.
 */
import type { CudaContext } from './context.js';
import type { GraphRuntime } from './pass-tape.js';

/** CU_STREAM_CAPTURE_MODE_RELAXED: other threads' unsafe calls (none here) are not policed. */
const CAPTURE_RELAXED = 2;

export function cudaGraphRuntime(ctx: CudaContext): GraphRuntime | null {
  const { fn, check } = ctx.api;
  const needed = ['cuStreamBeginCapture', 'cuStreamEndCapture', 'cuGraphInstantiateWithFlags', 'cuGraphLaunch', 'cuGraphDestroy', 'cuGraphExecDestroy'];
  if (needed.some((name) => fn[name] === undefined)) return null;
  return {
    capture(issue) {
      check('cuStreamBeginCapture', fn.cuStreamBeginCapture!(ctx.stream, CAPTURE_RELAXED) as number);
      let failure: unknown = null;
      try {
        issue();
      } catch (e) {
        failure = e;
      }
      const graph = new BigUint64Array(1);
      const ended = fn.cuStreamEndCapture!(ctx.stream, graph) as number;
      if (failure !== null) {
        if (ended === 0 && graph[0]) fn.cuGraphDestroy!(graph[0]);
        throw failure;
      }
      check('cuStreamEndCapture', ended);
      const exec = new BigUint64Array(1);
      try {
        check('cuGraphInstantiateWithFlags', fn.cuGraphInstantiateWithFlags!(exec, graph[0]!, 0n) as number);
      } finally {
        fn.cuGraphDestroy!(graph[0]!);
      }
      return exec[0]!;
    },
    launch: (exec) => check('cuGraphLaunch', fn.cuGraphLaunch!(exec, ctx.stream) as number),
    destroy: (exec) => check('cuGraphExecDestroy', fn.cuGraphExecDestroy!(exec) as number),
  };
}
