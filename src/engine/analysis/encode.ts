import * as tf from '@tensorflow/tfjs-core';
import { BertEncoder } from '../model/bert';
import { EncodedExample } from '../data/types';
import { makeBatches } from '../data/batching';
import { EVAL_CONTEXT } from '../experiment';

/**
 * Feature extraction: the final hidden state of the first token ([CLS]) of each example, in input order.
 * Also the way to check this encoder against another implementation of the same checkpoint.
 */
export function encodeFirstToken(encoder: BertEncoder, examples: EncodedExample[], batchSize: number, padId: number): number[][] {
  const out: number[][] = new Array(examples.length);
  for (const batch of makeBatches(examples, batchSize, { shuffle: false, padId, taskType: 'regression' })) {
    const rows = tf.tidy(() => BertEncoder.firstToken(encoder.forward(batch, EVAL_CONTEXT), batch.batchSize, batch.seqLen).arraySync());
    batch.indices.forEach((idx, r) => (out[idx] = rows[r]));
  }
  return out;
}
