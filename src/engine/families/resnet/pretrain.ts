import * as path from 'node:path';
import { Rng } from '../../util/random';
import { AdamW, linearScheduleFactor } from '../../train/adamw';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomicFile';
import { AugmentOptions, channelStats } from '../../data/images/imageSet';
import { ImageSource, NETWORK_FILES, readImageTask, ResNetFamilyModel, saveNetwork } from './family';
import { ResNet, ResNetConfig, resnetParameterCount } from './network';
import { ResNetDomainModel } from './model';

/**
 * Pretraining a ResNet for small images on one domain (the built-in network: Fashion-MNIST), the step before
 * other domains adapt it. Trains every parameter from a seeded initialisation with AdamW and a linear warm-up and
 * decay, then writes the network folder (config.json, model.safetensors), the recipe that rebuilds it
 * (pretrain.json) and a model card (README.md) with the test accuracy. The classifier is not part of the network:
 * each domain trains its own.
 */

export interface ResNetPretrainRecipe {
  network: ResNetConfig;
  train: ImageSource;
  test?: ImageSource | null;
  labels?: string[] | null;
  epochs: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  warmupRatio: number;
  seed: number;
  augment: AugmentOptions;
  /** Train on the first N training images only (null: all), where time is short. */
  trainExamples?: number | null;
  /** Measure the test accuracy on the first N test images only (null: all). */
  testExamples?: number | null;
}

export interface ResNetPretrainResult {
  steps: number;
  /** Accuracy of the pretraining classifier on the test split, when there is one. */
  testAccuracy: number | null;
  finalLoss: number;
}

/** `baseDir` resolves the recipe's relative paths; `out` receives the network folder. */
export async function pretrainResNet(
  recipe: ResNetPretrainRecipe,
  baseDir: string,
  out: string,
  onProgress?: (p: { step: number; totalSteps: number; loss: number }) => void,
): Promise<ResNetPretrainResult> {
  // The wall time of the whole pretraining (reading the data and the test included), for the model card.
  const started = Date.now();
  const shape = { size: recipe.network.imageSize, channels: recipe.network.inputChannels as 1 | 3 };
  const data = readImageTask({ train: recipe.train, test: recipe.test ?? null, labels: recipe.labels ?? null }, baseDir, shape);
  if (recipe.trainExamples) data.train = data.train.slice(0, recipe.trainExamples);
  if (recipe.testExamples) data.test = data.test.slice(0, recipe.testExamples);
  const rng = new Rng(recipe.seed);
  const network = ResNet.init(recipe.network, rng);
  const domain = ResNetDomainModel.create(network, 'full', 'pretraining', data.labels, recipe.seed);
  const model = new ResNetFamilyModel(domain, path.resolve(out), channelStats(data.train, shape.channels), recipe.augment);
  try {
    const params = model.trainableParams();
    const optimizer = new AdamW(params, { weightDecay: recipe.weightDecay });
    const batchesPerEpoch = Math.ceil(data.train.length / recipe.batchSize);
    const totalSteps = recipe.epochs * batchesPerEpoch;
    const warmup = Math.round(recipe.warmupRatio * totalSteps);
    let step = 0;
    let loss = NaN;
    for (let epoch = 0; epoch < recipe.epochs; epoch++) {
      for (const batch of model.batches(data.train, recipe.batchSize, { training: true, rng: new Rng(recipe.seed * 7919 + epoch + 1) })) {
        const result = model.lossAndGradients(batch);
        loss = result.loss;
        if (!Number.isFinite(loss)) throw new Error(`pretraining diverged at step ${step}: lower the learning rate (${recipe.learningRate})`);
        const lr = recipe.learningRate * linearScheduleFactor(step, warmup, totalSteps);
        optimizer.apply(result.grads, () => lr);
        for (const g of result.grads.values()) g.dispose();
        step++;
        onProgress?.({ step, totalSteps, loss });
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    optimizer.dispose();
    const testAccuracy = data.test.length ? model.evaluate(data.test, 256).metrics.accuracy : null;
    const wallMs = Date.now() - started;
    saveNetwork(out, network);
    writeJsonAtomic(path.join(out, RECIPE_FILE), recipe);
    writeFileAtomic(path.join(out, 'README.md'), modelCard(recipe, data.labels, data.train.length, data.test.length, testAccuracy, step, wallMs));
    return { steps: step, testAccuracy, finalLoss: loss };
  } finally {
    model.dispose();
  }
}

export const RECIPE_FILE = 'pretrain.json';

function describeSource(source: ImageSource): string {
  return typeof source === 'string' ? source : `${source.images} with ${source.labels}`;
}

function modelCard(recipe: ResNetPretrainRecipe, labels: string[], trainCount: number, testCount: number, testAccuracy: number | null, steps: number, wallMs: number): string {
  const c = recipe.network;
  return [
    '# ResNet for small images',
    '',
    `Rebuffi et al.'s ResNet-26 layout scaled down: a 3x3 stem, three stages of ${c.blocksPerStage} basic block${c.blocksPerStage > 1 ? 's' : ''} ` +
      `(widths ${c.widths.join(', ')}), BatchNorm after every convolution, parameter-free shortcuts; ` +
      `${c.imageSize}x${c.imageSize} ${c.inputChannels === 1 ? 'grey' : 'colour'} inputs; ${resnetParameterCount(c).toLocaleString('en-US')} parameters (classifier not included).`,
    '',
    `Pretrained from seed ${recipe.seed} on ${trainCount} images of ${labels.length} classes for ${recipe.epochs} epochs (${steps} steps, ` +
      `batch ${recipe.batchSize}, AdamW at ${recipe.learningRate}, weight decay ${recipe.weightDecay}) in ${(wallMs / 60000).toFixed(1)} minutes (reading the data and the test included).`,
    `Training images: ${describeSource(recipe.train)}${recipe.trainExamples ? ` (the first ${recipe.trainExamples})` : ''}. Classes: ${labels.join(', ')}.`,
    testAccuracy === null
      ? 'No test split was given.'
      : `Test accuracy of the pretraining classifier: ${(100 * testAccuracy).toFixed(2)}% on ${testCount} images (${describeSource(recipe.test!)}${recipe.testExamples ? `, the first ${recipe.testExamples}` : ''}).`,
    '',
    `The recipe that rebuilds it is ${RECIPE_FILE}; the weights are ${NETWORK_FILES.weights}, the shape ${NETWORK_FILES.config}.`,
    '',
  ].join('\n');
}
