import * as fs from 'node:fs';
import * as path from 'node:path';
import { byteLevelAlphabet } from 'tokenizers';
import { runPython, runPythonAsync } from './python';

/**
 * Small random checkpoints of the BERT family's members in the Hugging Face layout, and their forward passes,
 * both made by PyTorch (Debian's python3-torch: the independent side). The Python below writes config.json and
 * model.safetensors (by hand: the `safetensors` package is not installed) under each model's own parameter
 * names, with the extra tensors a released checkpoint has (pooler, MLM and discriminator heads), and computes
 * the final hidden states written line by line from Hugging Face's modeling_bert.py, modeling_roberta.py,
 * modeling_distilbert.py and modeling_electra.py, in float64.
 */

export type Architecture = 'bert' | 'roberta' | 'xlm-roberta' | 'distilbert' | 'electra';

const PYTHON_SOURCE = String.raw`
import json, math, struct, sys
import torch

def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    head = json.dumps(header).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        assert info["dtype"] == "F32", info["dtype"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32).reshape(info["shape"]).to(torch.float64)
    return out

# ---- random checkpoints under each model's own names ------------------------------------------------------

def make(arch, folder, cfg, prefix, seed):
    g = torch.Generator().manual_seed(seed)
    W = {}
    def rand(*shape, std=0.2):
        return torch.randn(*shape, generator=g) * std
    def linear(name, n_in, n_out):
        W[name + ".weight"] = rand(n_out, n_in)      # PyTorch's [out, in]
        W[name + ".bias"] = rand(n_out, std=0.1)
    def norm(name, n):
        W[name + ".weight"] = 1 + rand(n, std=0.1)
        W[name + ".bias"] = rand(n, std=0.1)
    if arch == "distilbert":
        d, L, inner = cfg["dim"], cfg["n_layers"], cfg["hidden_dim"]
        W[prefix + "embeddings.word_embeddings.weight"] = rand(cfg["vocab_size"], d)
        W[prefix + "embeddings.position_embeddings.weight"] = rand(cfg["max_position_embeddings"], d)
        norm(prefix + "embeddings.LayerNorm", d)
        for i in range(L):
            p = prefix + "transformer.layer.%d." % i
            for n in ["q_lin", "k_lin", "v_lin", "out_lin"]:
                linear(p + "attention." + n, d, d)
            norm(p + "sa_layer_norm", d)
            linear(p + "ffn.lin1", d, inner)
            linear(p + "ffn.lin2", inner, d)
            norm(p + "output_layer_norm", d)
        # DistilBertForMaskedLM's head: loaded by nobody here, ignored.
        linear("vocab_transform", d, d)
        norm("vocab_layer_norm", d)
        linear("vocab_projector", d, cfg["vocab_size"])
    else:
        d, L, inner = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
        e = cfg.get("embedding_size", d)
        W[prefix + "embeddings.word_embeddings.weight"] = rand(cfg["vocab_size"], e)
        W[prefix + "embeddings.position_embeddings.weight"] = rand(cfg["max_position_embeddings"], e)
        W[prefix + "embeddings.token_type_embeddings.weight"] = rand(cfg["type_vocab_size"], e)
        norm(prefix + "embeddings.LayerNorm", e)
        if e != d:
            linear(prefix + "embeddings_project", e, d)
        for i in range(L):
            p = prefix + "encoder.layer.%d." % i
            for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
                linear(p + n, d, d)
            norm(p + "attention.output.LayerNorm", d)
            linear(p + "intermediate.dense", d, inner)
            linear(p + "output.dense", inner, d)
            norm(p + "output.LayerNorm", d)
        if arch == "electra":
            linear("discriminator_predictions.dense", d, d)
            linear("discriminator_predictions.dense_prediction", d, 1)
        else:
            linear(prefix + "pooler.dense", d, d)
    write_safetensors(folder + "/model.safetensors", W)
    with open(folder + "/config.json", "w") as f:
        json.dump(cfg, f, indent=2)

# ---- forward passes, from Hugging Face's modeling files -----------------------------------------------------

def act(name, x):
    if name == "gelu":          # ACT2FN["gelu"]: exact, erf
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "gelu_new":      # NewGELUActivation: the tanh approximation
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "relu":
        return torch.relu(x)
    raise ValueError(name)

def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)

def lin(W, name, x):
    return x @ W[name + ".weight"].T + W[name + ".bias"]

def find_prefix(W, names):
    for p in names:
        if p + "embeddings.word_embeddings.weight" in W:
            return p
    raise KeyError("no embeddings")

def bert_layer(W, p, x, mask, cfg):
    # BertLayer (RobertaLayer and ElectraLayer are copies of it): BertSelfAttention, BertSelfOutput,
    # BertIntermediate, BertOutput.
    B, T, d = x.shape
    H = cfg["num_attention_heads"]
    dh = d // H
    def heads(t):
        return t.view(B, T, H, dh).permute(0, 2, 1, 3)
    q = heads(lin(W, p + "attention.self.query", x))
    k = heads(lin(W, p + "attention.self.key", x))
    v = heads(lin(W, p + "attention.self.value", x))
    scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
    # get_extended_attention_mask: (1 - mask) * finfo.min, added
    scores = scores + (1.0 - mask[:, None, None, :]) * torch.finfo(scores.dtype).min
    probs = torch.softmax(scores, dim=-1)
    context = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, d)
    eps = cfg["layer_norm_eps"]
    attn = layer_norm(lin(W, p + "attention.output.dense", context) + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
    inner = act(cfg["hidden_act"], lin(W, p + "intermediate.dense", attn))
    return layer_norm(lin(W, p + "output.dense", inner) + attn, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)

def forward(arch, folder, ids, types):
    cfg = json.load(open(folder + "/config.json"))
    W = read_safetensors(folder + "/model.safetensors")
    ids = torch.tensor([ids])
    types = torch.tensor([types])
    mask = torch.ones(ids.shape, dtype=torch.float64)
    T = ids.shape[1]
    if arch == "distilbert":
        p = find_prefix(W, ["distilbert.", ""])
        # Embeddings: word + position (no token types), LayerNorm(eps=1e-12)
        x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][torch.arange(T)][None]
        x = layer_norm(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], 1e-12)
        d, H = cfg["dim"], cfg["n_heads"]
        dh = d // H
        B = 1
        for i in range(cfg["n_layers"]):
            q_ = p + "transformer.layer.%d." % i
            def shape(t):
                return t.view(B, -1, H, dh).transpose(1, 2)
            q = shape(lin(W, q_ + "attention.q_lin", x))
            k = shape(lin(W, q_ + "attention.k_lin", x))
            v = shape(lin(W, q_ + "attention.v_lin", x))
            q = q / math.sqrt(dh)
            scores = q @ k.transpose(2, 3)
            scores = scores.masked_fill((mask == 0).view(B, 1, 1, T).expand_as(scores), torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1)
            context = (weights @ v).transpose(1, 2).contiguous().view(B, -1, H * dh)
            sa = layer_norm(lin(W, q_ + "attention.out_lin", context) + x, W[q_ + "sa_layer_norm.weight"], W[q_ + "sa_layer_norm.bias"], 1e-12)
            ffn = lin(W, q_ + "ffn.lin2", act(cfg.get("activation", "gelu"), lin(W, q_ + "ffn.lin1", sa)))
            x = layer_norm(ffn + sa, W[q_ + "output_layer_norm.weight"], W[q_ + "output_layer_norm.bias"], 1e-12)
        return x[0, 0]
    p = find_prefix(W, ["bert.", "roberta.", "electra.", ""])
    if arch in ("roberta", "xlm-roberta"):
        # create_position_ids_from_input_ids: cumsum of the non-pad mask, offset by padding_idx
        pad = cfg["pad_token_id"]
        nonpad = ids.ne(pad).int()
        positions = (torch.cumsum(nonpad, dim=1).type_as(nonpad) * nonpad).long() + pad
    else:
        positions = torch.arange(T)[None]
    eps = cfg["layer_norm_eps"]
    x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.token_type_embeddings.weight"][types] + W[p + "embeddings.position_embeddings.weight"][positions]
    x = layer_norm(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], eps)
    if p + "embeddings_project.weight" in W:   # ElectraModel: if hasattr(self, "embeddings_project")
        x = lin(W, p + "embeddings_project", x)
    for i in range(cfg["num_hidden_layers"]):
        x = bert_layer(W, p + "encoder.layer.%d." % i, x, mask, cfg)
    return x[0, 0]

cmd = sys.argv[1]
if cmd == "make":
    arch, folder, cfg, prefix, seed = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5], int(sys.argv[6])
    make(arch, folder, cfg, prefix, seed)
else:
    arch, folder = sys.argv[2], sys.argv[3]
    rows = json.load(open(sys.argv[4]))
    print(json.dumps([forward(arch, folder, r["ids"], r["types"]).tolist() for r in rows]))
`;

const SIZES = { hidden: 32, heads: 4, layers: 2, intermediate: 64 };

/** config.json of a small model of each architecture, as Hugging Face writes it (its own keys). */
export function smallConfig(arch: Architecture, vocabSize: number, maxPositions: number): Record<string, unknown> {
  const { hidden, heads, layers, intermediate } = SIZES;
  switch (arch) {
    case 'distilbert':
      return { model_type: 'distilbert', architectures: ['DistilBertForMaskedLM'], vocab_size: vocabSize, dim: hidden, n_heads: heads, n_layers: layers, hidden_dim: intermediate, activation: 'gelu', max_position_embeddings: maxPositions, dropout: 0.1, attention_dropout: 0.1, pad_token_id: 0, sinusoidal_pos_embds: false };
    case 'roberta':
    case 'xlm-roberta':
      return { model_type: arch, architectures: [arch === 'roberta' ? 'RobertaForMaskedLM' : 'XLMRobertaModel'], vocab_size: vocabSize, hidden_size: hidden, num_attention_heads: heads, num_hidden_layers: layers, intermediate_size: intermediate, hidden_act: 'gelu', max_position_embeddings: maxPositions, type_vocab_size: 1, layer_norm_eps: 1e-5, pad_token_id: 1, bos_token_id: 0, eos_token_id: 2, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, position_embedding_type: 'absolute' };
    case 'electra':
      // An embedding size below the hidden size, as ELECTRA-small has (128 vs 256): embeddings_project.
      return { model_type: 'electra', architectures: ['ElectraForPreTraining'], vocab_size: vocabSize, embedding_size: 16, hidden_size: hidden, num_attention_heads: heads, num_hidden_layers: layers, intermediate_size: intermediate, hidden_act: 'gelu_new', max_position_embeddings: maxPositions, type_vocab_size: 2, layer_norm_eps: 1e-12, pad_token_id: 0, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
    case 'bert':
      return { model_type: 'bert', architectures: ['BertForMaskedLM'], vocab_size: vocabSize, hidden_size: hidden, num_attention_heads: heads, num_hidden_layers: layers, intermediate_size: intermediate, hidden_act: 'gelu', max_position_embeddings: maxPositions, type_vocab_size: 2, layer_norm_eps: 1e-12, pad_token_id: 0, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
  }
}

/** The prefix a released checkpoint of each architecture stores the encoder under ('' for the bare XLMRobertaModel). */
const CHECKPOINT_PREFIX: Record<Architecture, string> = { bert: 'bert.', roberta: 'roberta.', 'xlm-roberta': '', distilbert: 'distilbert.', electra: 'electra.' };

// ---- tokenizer.json files, written as the tokenizers library serialises them -------------------------------------

const WORDS = ['the', 'a', 'good', 'bad', 'great', 'awful', 'movie', 'film', 'is', 'was', 'not', 'very', 'it', 'fine', 'nice', 'happy', 'love', 'best', 'win', 'sad', 'hate', 'worst', 'poor', 'lose', 'ugly'];

/** WordPiece (BERT, DistilBERT, ELECTRA): BertNormalizer, BertPreTokenizer, [CLS] A [SEP] (B [SEP]) with type ids 0/1. */
function wordPieceTokenizer(): { json: Record<string, unknown>; vocabSize: number } {
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const letters = 'abcdefghijklmnopqrstuvwxyz.,!?'.split('');
  const tokens = [...specials, ...letters, ...letters.map((l) => '##' + l), ...WORDS, '##ing', '##s'];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const special = (t: string) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    vocabSize: tokens.length,
    json: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: specials.map(special),
      normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
        special_tokens: { '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] } },
      },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    },
  };
}

/** Byte-level BPE (RoBERTa): ByteLevel pre-tokenizer, merges up to whole words, <s> A </s></s> B </s> (RobertaProcessing). */
function byteLevelBpeTokenizer(): { json: Record<string, unknown>; vocabSize: number } {
  const specials = ['<s>', '<pad>', '</s>', '<unk>'];
  const tokens = [...specials, ...byteLevelAlphabet().sort()];
  const merges: string[] = [];
  const add = (t: string) => {
    if (!tokens.includes(t)) tokens.push(t);
  };
  // Each word (and its space-prefixed form, Ġword) built up letter by letter.
  for (const w of WORDS) {
    for (const word of [w, 'Ġ' + w]) {
      let piece = word[0];
      for (const ch of word.slice(1)) {
        const merge = `${piece} ${ch}`;
        if (!merges.includes(merge)) merges.push(merge);
        piece += ch;
        add(piece);
      }
    }
  }
  add('<mask>');
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const special = (t: string) => ({ id: vocab[t], content: t, single_word: false, lstrip: t === '<mask>', rstrip: false, normalized: false, special: true });
  return {
    vocabSize: tokens.length,
    json: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [...specials, '<mask>'].map(special),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'RobertaProcessing', sep: ['</s>', vocab['</s>']], cls: ['<s>', vocab['<s>']], trim_offsets: true, add_prefix_space: false },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
    },
  };
}

/** Unigram (XLM-R, CamemBERT: SentencePiece): Metaspace, <s> A </s> </s> B </s> as XLM-R's TemplateProcessing. */
function unigramTokenizer(): { json: Record<string, unknown>; vocabSize: number } {
  const pieces: [string, number][] = [['<s>', 0], ['<pad>', 0], ['</s>', 0], ['<unk>', 0]];
  for (const w of WORDS) pieces.push(['▁' + w, -3 - w.length * 0.1]);
  for (const ch of 'abcdefghijklmnopqrstuvwxyz.,!?') pieces.push([ch, -8]);
  pieces.push(['▁', -5]);
  pieces.push(['<mask>', 0]);
  const id = (t: string) => pieces.findIndex(([p]) => p === t);
  const special = (t: string) => ({ id: id(t), content: t, single_word: false, lstrip: t === '<mask>', rstrip: false, normalized: false, special: true });
  const s = (t: string, typeId = 0) => ({ SpecialToken: { id: t, type_id: typeId } });
  return {
    vocabSize: pieces.length,
    json: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: ['<s>', '<pad>', '</s>', '<unk>', '<mask>'].map(special),
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      post_processor: {
        type: 'TemplateProcessing',
        single: [s('<s>'), { Sequence: { id: 'A', type_id: 0 } }, s('</s>')],
        pair: [s('<s>'), { Sequence: { id: 'A', type_id: 0 } }, s('</s>'), s('</s>'), { Sequence: { id: 'B', type_id: 0 } }, s('</s>')],
        special_tokens: { '<s>': { id: '<s>', ids: [id('<s>')], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [id('</s>')], tokens: ['</s>'] } },
      },
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      model: { type: 'Unigram', unk_id: id('<unk>'), vocab: pieces, byte_fallback: false },
    },
  };
}

export const TOKENIZER_KIND: Record<Architecture, 'wordpiece' | 'bpe' | 'unigram'> = { bert: 'wordpiece', roberta: 'bpe', 'xlm-roberta': 'unigram', distilbert: 'wordpiece', electra: 'wordpiece' };

/** The tokenizer.json of `arch` written into `dir` (created); the arguments of PyTorch's side of writeHfEncoder. */
function hfEncoderArgs(arch: Architecture, dir: string, seed: number, maxPositions: number): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const kind = TOKENIZER_KIND[arch];
  const tok = kind === 'wordpiece' ? wordPieceTokenizer() : kind === 'bpe' ? byteLevelBpeTokenizer() : unigramTokenizer();
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok.json));
  // RoBERTa-style models count positions from padding_idx + 1: two more rows than tokens, as 514 for 512.
  const positions = arch === 'roberta' || arch === 'xlm-roberta' ? maxPositions + 2 : maxPositions;
  return ['make', arch, dir, JSON.stringify(smallConfig(arch, tok.vocabSize, positions)), CHECKPOINT_PREFIX[arch], String(seed)];
}

/**
 * Writes a small random checkpoint of `arch` into `dir` (created): config.json and model.safetensors by PyTorch,
 * tokenizer.json of the architecture's kind. Returns the folder.
 */
export function writeHfEncoder(arch: Architecture, dir: string, seed = 1, maxPositions = 40): string {
  runPython(PYTHON_SOURCE, hfEncoderArgs(arch, dir, seed, maxPositions));
  return dir;
}

/** writeHfEncoder, awaited (PyTorch in a child process that does not block the test's worker). */
export async function writeHfEncoderAsync(arch: Architecture, dir: string, seed = 1, maxPositions = 40): Promise<string> {
  await runPythonAsync(PYTHON_SOURCE, hfEncoderArgs(arch, dir, seed, maxPositions));
  return dir;
}

function referenceArgs(arch: Architecture, dir: string, rows: { ids: number[]; types: number[] }[], workDir: string): string[] {
  const file = path.join(workDir, `ids-${arch}.json`);
  fs.writeFileSync(file, JSON.stringify(rows));
  return ['forward', arch, dir, file];
}

/** PyTorch's final hidden state of the first token, one example at a time (no padding), for given token ids. */
export function referenceFirstToken(arch: Architecture, dir: string, rows: { ids: number[]; types: number[] }[], workDir: string): number[][] {
  return JSON.parse(runPython(PYTHON_SOURCE, referenceArgs(arch, dir, rows, workDir)));
}

/** referenceFirstToken, awaited. */
export async function referenceFirstTokenAsync(arch: Architecture, dir: string, rows: { ids: number[]; types: number[] }[], workDir: string): Promise<number[][]> {
  return JSON.parse(await runPythonAsync(PYTHON_SOURCE, referenceArgs(arch, dir, rows, workDir)));
}
