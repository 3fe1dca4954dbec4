/** What calibration sees of a layer as it runs: the input of each linear (group), by name and expert. */

/** Where a linear layer's input is observed: q/k/v share one input, gate/up share one. */
export type LinearInput = 'qkv' | 'o' | 'gateUp' | 'down';

/**
 * Receives the input x [m, K] of each linear (group) of a layer as the layer runs; must not modify x.
 * expert: null for attention and a dense MLP; in a mixture of experts, 'gateUp' comes first with
 * null (the block's input, every token: the router's), then per expert e with the rows routed to it
 * ('gateUp', then 'down', expert e).
 */
export type LinearObserver<T = Float32Array> = (input: LinearInput, x: T, m: number, expert: number | null) => void;
