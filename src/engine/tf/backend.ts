import * as tf from '@tensorflow/tfjs-core';
// Gradient functions live apart from the ops in tfjs-core; training needs them registered.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

/**
 * Backend choice (SPEC section 5): native TensorFlow through tfjs-node where it is installed (an optional
 * dependency that cannot install without internet), else the WebAssembly backend, else pure JS.
 */
export type BackendName = 'node' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export interface BackendInfo {
  /** What the user asked for. */
  requested: BackendRequest;
  /** What runs. */
  name: BackendName;
  /** tfjs's own name of the backend ('tensorflow', 'wasm', 'cpu'). */
  tfjsName: string;
  /** Why the preferred backends were not used, when they were not. */
  notes: string[];
  versions: Record<string, string>;
}

let active: BackendInfo | null = null;

/**
 * Backend packages are loaded at run time, not imported, so a missing optional one (tfjs-node) is a choice
 * to skip rather than a crash; the bundler keeps @tensorflow/* external.
 */
const loaders: Record<BackendName, () => unknown> = {
  node: () => require('@tensorflow/tfjs-node'),
  wasm: () => require('@tensorflow/tfjs-backend-wasm'),
  cpu: () => require('@tensorflow/tfjs-backend-cpu'),
};

function packageVersion(pkg: string): string | null {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

async function tryNode(notes: string[]): Promise<boolean> {
  try {
    loaders.node();
    return await tf.setBackend('tensorflow');
  } catch (err) {
    notes.push(`tfjs-node unavailable: ${firstLine(err)}`);
    return false;
  }
}

async function tryWasm(notes: string[]): Promise<boolean> {
  try {
    loaders.wasm();
    shareMemoryInWasmIdentity();
    return await tf.setBackend('wasm');
  } catch (err) {
    notes.push(`wasm backend unavailable: ${firstLine(err)}`);
    return false;
  }
}

/**
 * tfjs-backend-wasm's Identity kernel copies its input, and tfjs runs Identity for every tf.clone and for every
 * tensor a gradient function saves (customGrad's save() and registered gradients' inputsToSave alike): a full
 * pass over memory per saved activation, on every training step. Tensor memory is never written after a kernel
 * has produced it (the wasm backend's own Reshape shares it too), so Identity shares it, counting the reference,
 * as tfjs's cpu backend does.
 */
function shareMemoryInWasmIdentity(): void {
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({
    kernelName: tf.Identity,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

/**
 * A float32 tensor's values copied into `into` from element `at` (by default into a new array of their own, which
 * can be transferred to another thread), once: on the wasm backend straight from its heap, where dataSync would
 * copy them into a new array first (the workers' exchange moves every trainable weight and gradient each step);
 * elsewhere through dataSync.
 */
export function copyValues(t: tf.Tensor, into: Float32Array = new Float32Array(t.size), at = 0): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`copyValues: a ${t.dtype} tensor, float32 expected`);
  const backend = tf.engine().backend as unknown as { wasm?: { HEAPF32?: Float32Array }; dataIdMap?: { get(dataId: object): { memoryOffset: number } | undefined } };
  const heap = tf.getBackend() === 'wasm' ? backend.wasm?.HEAPF32 : undefined;
  const offset = heap ? backend.dataIdMap?.get(t.dataId)?.memoryOffset : undefined;
  if (heap && offset !== undefined) into.set(heap.subarray(offset / 4, offset / 4 + t.size), at);
  else into.set(t.dataSync() as Float32Array, at);
  return into;
}

async function tryCpu(notes: string[]): Promise<boolean> {
  try {
    loaders.cpu();
    return await tf.setBackend('cpu');
  } catch (err) {
    notes.push(`cpu backend unavailable: ${firstLine(err)}`);
    return false;
  }
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0];
}

const attempts: Record<BackendName, (notes: string[]) => Promise<boolean>> = {
  node: tryNode,
  wasm: tryWasm,
  cpu: tryCpu,
};

/** Picks and initialises the backend once per process; later calls return the same choice. */
export async function initBackend(requested: BackendRequest = 'auto'): Promise<BackendInfo> {
  if (active) {
    if (requested !== 'auto' && requested !== active.name) {
      throw new Error(`backend already initialised as ${active.name}; cannot switch to ${requested} in the same process`);
    }
    return active;
  }
  const notes: string[] = [];
  const order: BackendName[] = requested === 'auto' ? ['node', 'wasm', 'cpu'] : [requested];
  for (const name of order) {
    if (await attempts[name](notes)) {
      await tf.ready();
      active = { requested, name, tfjsName: tf.getBackend(), notes, versions: versions() };
      return active;
    }
  }
  throw new Error(`no TensorFlow.js backend could start (${order.join(', ')} tried): ${notes.join('; ')}`);
}

export function activeBackend(): BackendInfo | null {
  return active;
}

function versions(): Record<string, string> {
  const v: Record<string, string> = { node: process.versions.node, 'tfjs-core': tf.version_core };
  for (const pkg of ['@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node']) {
    const version = packageVersion(pkg);
    if (version) v[pkg.replace('@tensorflow/', '')] = version;
  }
  return v;
}
