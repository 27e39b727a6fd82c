import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Model ids (`roberta-base`, `FacebookAI/xlm-roberta-base`) in the local Hugging Face hub cache, found as
 * huggingface_hub finds them: the cache folder is $HF_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; a model is
 * `models--<org>--<name>/`, whose `refs/main` names the snapshot `snapshots/<commit>/` that holds its files.
 * Nothing is downloaded: a model must have been fetched (by transformers, `huggingface-cli download`) before.
 */

/** Hub ids are `name` or `org/name` of letters, digits, `-`, `_` and `.`. */
export function isHubModelId(ref: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(ref) && !ref.includes('..');
}

/** The hub cache folder, and the environment variable it came from (for messages). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): { dir: string; from: string } {
  if (env.HF_HUB_CACHE) return { dir: env.HF_HUB_CACHE, from: '$HF_HUB_CACHE' };
  if (env.HF_HOME) return { dir: path.join(env.HF_HOME, 'hub'), from: '$HF_HOME/hub' };
  if (env.XDG_CACHE_HOME) return { dir: path.join(env.XDG_CACHE_HOME, 'huggingface', 'hub'), from: '$XDG_CACHE_HOME/huggingface/hub' };
  return { dir: path.join(os.homedir(), '.cache', 'huggingface', 'hub'), from: '~/.cache/huggingface/hub' };
}

export type CacheLookup = { dir: string } | { missing: string };

/**
 * The snapshot folder of `modelId` in the cache, or what is missing there (a sentence naming the path).
 * Follows `refs/main`; a cache without refs (copied by hand) is accepted when it holds exactly one snapshot.
 */
export function findInHubCache(modelId: string, env: NodeJS.ProcessEnv = process.env): CacheLookup {
  const { dir: cache, from } = hubCacheDir(env);
  const repo = path.join(cache, `models--${modelId.split('/').join('--')}`);
  if (!fs.existsSync(repo)) return { missing: `${repo} (the Hugging Face cache, ${from}): no such folder` };
  const snapshots = path.join(repo, 'snapshots');
  const ref = path.join(repo, 'refs', 'main');
  let snapshot: string;
  if (fs.existsSync(ref)) {
    snapshot = path.join(snapshots, fs.readFileSync(ref, 'utf8').trim());
  } else {
    const all = fs.existsSync(snapshots) ? fs.readdirSync(snapshots) : [];
    if (all.length !== 1) return { missing: `${ref}: no such file, and ${all.length} snapshots in ${snapshots} to choose from` };
    snapshot = path.join(snapshots, all[0]);
  }
  if (!fs.existsSync(path.join(snapshot, 'config.json'))) return { missing: `${snapshot}: no config.json (refs/main names this snapshot)` };
  return { dir: snapshot };
}
