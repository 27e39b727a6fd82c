/** One labelled example as read from a task file. */
export interface Example {
  text: string;
  textPair?: string;
  /** Class index for classification, the target value for regression. */
  label: number;
  /** Where it came from, for error messages and predictions. */
  source: { file: string; line: number };
}

/** A row that could not become an example: where it is and why. */
export interface SkippedRow {
  file: string;
  line: number;
  reason: string;
  /**
   * 'bad row': the row itself is wrong (missing field, unparseable, unknown class);
   * 'class not seen in train': a dev/test row whose class never occurs in train (the row may be fine, the
   * training file lacks the class).
   */
  kind: 'bad row' | 'class not seen in train';
}

export interface TaskData {
  train: Example[];
  dev: Example[];
  test: Example[];
  /** Class names in index order (classification); null for regression. */
  labels: string[] | null;
  /** Rows skipped because `skipBadRows` was set, every one, in file order (train, dev, test). */
  skipped: SkippedRow[];
  /** Things that load but look wrong (a class seen once, numbers with decimals as classes): what to check. */
  warnings: string[];
}

/** An example after tokenisation: [CLS] a [SEP] (b [SEP]), truncated to the maximum length. */
export interface EncodedExample {
  inputIds: number[];
  tokenTypeIds: number[];
  label: number;
  /** Index of the example in its split, so predictions can be put back in order. */
  index: number;
}

/** A padded batch, row-major [batchSize, seqLen]. */
export interface Batch {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  /** Class indices (classification) or targets (regression). */
  labels: Float32Array;
  batchSize: number;
  seqLen: number;
  /** Number of non-padding tokens in the batch. */
  realTokens: number;
  /** Indices of the batch's examples in their split. */
  indices: number[];
}
