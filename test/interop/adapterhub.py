"""AdapterHub's bottleneck adapter, parallel adapter, LoRA / (IA)^3 (methods/lora.py LoRA, IA3, LoRALinear), prefix
tuning, head and fusion forward (adapter-hub/adapters v1.2.0: methods/modeling.py Adapter and ParallelAdapter
pre_forward/forward/post_forward and BertFusion, methods/bottleneck.py bottleneck_layer_forward and compose_fuse,
methods/prefix_tuning.py PrefixTuning, FlatPrefixTuning and PrefixTuningLayer.compose_single, heads/base.py
ClassificationHead) on a BERT forward written from Hugging Face's modeling_bert.py, in eval mode. Weights come from the .bin files through torch.load(weights_only=True), as AdapterHub loads them.
Independent of Adapter Lab's code: the test side of test/interop/adapterHub.test.ts.

usage: adapterhub.py MODEL_DIR SPEC_JSON  ->  prints {"logits": [[...] per sentence]}
SPEC: {"ids": [[...]], "adapters": [dir, ...], "fusion": dir | null, "head": dir}
"""
import json, math, os, struct, sys
import torch
import torch.nn.functional as F


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        assert v["dtype"] == "F32", v["dtype"]
        out[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=torch.float32).reshape(v["shape"])
    return out


def load_bin(path):
    return torch.load(path, map_location="cpu", weights_only=True)


ACT = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu, "silu": F.silu, "tanh": torch.tanh,
       "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


class Adapter:
    """methods/modeling.py Adapter (sequential, no adapter LayerNorms, no gating), eval mode."""

    def __init__(self, name, config, sd, prefix, d, layer_idx):
        rf = config["reduction_factor"]
        if isinstance(rf, dict):
            rf = rf[str(layer_idx)] if str(layer_idx) in rf else rf["default"]
        down_sample = int(d // rf)
        if down_sample < 1:
            down_sample = 1
        self.w_down, self.b_down = sd[prefix + "adapter_down.0.weight"], sd[prefix + "adapter_down.0.bias"]
        self.w_up, self.b_up = sd[prefix + "adapter_up.weight"], sd[prefix + "adapter_up.bias"]
        assert tuple(self.w_down.shape) == (down_sample, d), (prefix, tuple(self.w_down.shape), down_sample)
        self.act = ACT[config["non_linearity"].lower()]
        assert isinstance(config["scaling"], float), "BnConfig: Unknown scaling type"
        self.scaling = config["scaling"]
        self.residual_before_ln = config["residual_before_ln"]
        self.original_ln_before = config["original_ln_before"]
        self.original_ln_after = config["original_ln_after"]
        self.adapter_residual_before_ln = config["adapter_residual_before_ln"]
        assert not config["ln_before"] and not config["ln_after"] and not config["use_gating"]

    def pre_forward(self, hidden_states, input_tensor, layer_norm, fusion_config=None):
        query = None
        if self.residual_before_ln is True:
            residual = hidden_states
        if fusion_config is not None and fusion_config["query_before_ln"]:
            query = hidden_states
        if self.original_ln_before:
            hidden_states = hidden_states + input_tensor
            if self.residual_before_ln == "post_add":
                residual = hidden_states
            hidden_states = layer_norm(hidden_states)
        if not self.residual_before_ln:
            residual = hidden_states
        if fusion_config is not None and not fusion_config["query_before_ln"]:
            query = hidden_states
        return hidden_states, query, residual

    def forward(self, x, residual_input):
        down = self.act(F.linear(x, self.w_down, self.b_down))
        up = F.linear(down, self.w_up, self.b_up)
        up = up * self.scaling
        output = up
        output = output + residual_input
        return output, down, up

    def post_forward(self, hidden_states, input_hidden_states, input_tensor, layer_norm):
        if self.original_ln_after:
            hidden_states = layer_norm(hidden_states + input_tensor)
        return hidden_states


# LoRALinear's modules of a BERT layer (models/bert/mixin_bert.py): attn_matrices of selfattn, intermediate, output.
LORA_MODULES = (("q", "attention.self.query", "selfattn_lora"), ("k", "attention.self.key", "selfattn_lora"), ("v", "attention.self.value", "selfattn_lora"),
                (None, "intermediate.dense", "intermediate_lora"), (None, "output.dense", "output_lora"))


class LoRAModule:
    """methods/lora.py LoRA (composition_mode "add") and IA3 ("scale") in LoRALinear.forward, eval mode, no gating."""

    def __init__(self, config, sd, prefix):
        assert not config.get("use_gating", False)
        self.mode = config.get("composition_mode", "add")
        self.B = sd[prefix + "lora_B"]
        if self.mode == "add":
            self.A = sd[prefix + "lora_A"]
            self.scaling = config["alpha"] / config["r"]
        else:
            assert config["r"] == 1
            self.scaling = config["alpha"]

    def __call__(self, layer_input, layer_output):
        if self.mode == "add":
            hidden = layer_input @ torch.t(self.A) @ torch.t(self.B) * self.scaling
            return layer_output + hidden * 1.0
        hidden = self.B.view(1, 1, -1).repeat(layer_input.shape[0], 1, 1) * self.scaling
        return layer_output * hidden


class ParallelAdapter(Adapter):
    """methods/modeling.py ParallelAdapter (no adapter LayerNorms, no gating), eval mode: the adapter reads the
    sublayer's input, and its output is added to the sublayer's output."""

    def pre_forward(self, hidden_states, input_tensor, layer_norm, fusion_config=None):
        query = None
        if fusion_config is not None:
            query = input_tensor
        return input_tensor, query, input_tensor

    def forward(self, x, residual_input):
        down = self.act(F.linear(x, self.w_down, self.b_down))
        up = F.linear(down, self.w_up, self.b_up)
        up = up * self.scaling
        output = up
        return output, down, up

    def post_forward(self, hidden_states, input_hidden_states, input_tensor, layer_norm):
        hidden_states = hidden_states + input_hidden_states
        if self.original_ln_after:
            hidden_states = layer_norm(hidden_states + input_tensor)
        return hidden_states


def prefix_key_values(config, weights, name, d, H, L):
    """methods/prefix_tuning.py: PrefixTuning.forward (the reparametrisation MLP) or FlatPrefixTuning.forward,
    as the config's `flat` says (AdapterHub builds the module from the config and loads the weights into it),
    batch size 1, eval mode (no dropout). Returns {layer: (keys, values)}, each [1, H, prefix_length, d // H]."""
    assert not config["use_gating"]
    layers = [i for i in range(L) if i not in config["leave_out"]]  # PrefixTuningPool.indicate_prefix, in layer order
    P, n_layers, dh = config["prefix_length"], len(layers), d // H
    base = f"prefix_tuning.prefix_tunings.{name}.self_prefix."
    if config["flat"]:
        key_values = weights[base + "control_trans"].unsqueeze(0).expand(1, -1)
    else:
        embs = weights[base + "wte.weight"][torch.arange(P)].unsqueeze(0)
        act = ACT[config["non_linearity"].lower()]
        hidden = act(F.linear(embs, weights[base + "control_trans.0.weight"], weights[base + "control_trans.0.bias"]))
        key_values = F.linear(hidden, weights[base + "control_trans.2.weight"], weights[base + "control_trans.2.bias"])
    key_values = key_values.reshape(1, P, n_layers * 2, H, dh).permute(2, 0, 3, 1, 4).split(2)
    return {layer: (key_values[k][0], key_values[k][1]) for k, layer in enumerate(layers)}


class BertFusion:
    def __init__(self, config, sd, prefix):
        assert config["query"] and config["key"] and config["value"] and config["value_before_softmax"]
        assert not config["residual_before"] and not config["temperature"]
        self.q_w, self.q_b = sd[prefix + "query.weight"], sd[prefix + "query.bias"]
        self.k_w, self.k_b = sd[prefix + "key.weight"], sd[prefix + "key.bias"]
        self.v_w = sd[prefix + "value.weight"]
        self.T = 1.0

    def forward(self, query, key, value, residual):
        query_layer = F.linear(query, self.q_w, self.q_b)
        key_layer = F.linear(key, self.k_w, self.k_b)
        value_layer = F.linear(value, self.v_w)
        attention_scores = torch.squeeze(torch.matmul(query_layer.unsqueeze(2), key_layer.transpose(-2, -1)), dim=2)
        attention_probs = torch.softmax(attention_scores / self.T, dim=-1)
        context_layer = torch.squeeze(torch.matmul(attention_probs.unsqueeze(2), value_layer), dim=2)
        context_layer += residual
        return context_layer


def main():
    model_dir, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    hf = json.load(open(os.path.join(model_dir, "config.json")))
    sd = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    d, L, H, eps = hf["hidden_size"], hf["num_hidden_layers"], hf["num_attention_heads"], hf.get("layer_norm_eps", 1e-12)
    # model.load_adapter(dir) for each: its config, its weights; any other key in the file (trained
    # LayerNorms) is loaded into the model too (load_weights_from_state_dict loads the whole state dict).
    adapters = {}  # (layer, location) -> {name: Adapter}
    loras = {}  # (layer, module) -> LoRAModule
    prefixes = {}  # layer -> (keys, values)
    names = []
    for adir in spec["adapters"]:
        cfg = json.load(open(os.path.join(adir, "adapter_config.json")))
        name, config = cfg["name"], cfg["config"]
        weights = {k[len("bert."):]: v for k, v in load_bin(os.path.join(adir, "pytorch_adapter.bin")).items()}
        for k, v in weights.items():
            if ".adapters." not in k and ".loras." not in k and ".prefix_tunings." not in k:
                sd[k] = v
        if config.get("architecture") == "prefix_tuning":
            prefixes = prefix_key_values(config, weights, name, d, H, L)
            names.append(name)
            continue
        if config.get("architecture") == "lora":
            for i in range(L):
                if i in config["leave_out"]:
                    continue
                for key, module, switch in LORA_MODULES:
                    if config[switch] and (key is None or key in config["attn_matrices"]):
                        loras[(i, module)] = LoRAModule(config, weights, f"encoder.layer.{i}.{module}.loras.{name}.")
            continue
        assert config.get("architecture") is None, "AdapterHub 1.2 maps only a missing architecture to BnConfig"
        adapter_class = ParallelAdapter if config["is_parallel"] else Adapter
        for i in range(L):
            if i in config["leave_out"]:
                continue
            for loc, sub, on in (("mh_adapter", "attention.output", config["mh_adapter"]), ("output_adapter", "output", config["output_adapter"])):
                if on:
                    adapters.setdefault((i, loc), {})[name] = adapter_class(name, config, weights, f"encoder.layer.{i}.{sub}.adapters.{name}.", d, i)
        names.append(name)
    fusion, fusion_config = {}, None
    if spec.get("fusion"):
        fcfg = json.load(open(os.path.join(spec["fusion"], "adapter_fusion_config.json")))
        fusion_config = fcfg["config"]
        fusion_names = fcfg["adapter_names"]
        assert fusion_names == names
        fname = ",".join(fusion_names)
        weights = {k[len("bert."):]: v for k, v in load_bin(os.path.join(spec["fusion"], "pytorch_model_adapter_fusion.bin")).items()}
        for k, v in weights.items():
            if "adapter_fusion_layer" not in k:
                sd[k] = v
        for i in range(L):
            for loc, sub in (("mh_adapter", "attention.output"), ("output_adapter", "output")):
                prefix = f"encoder.layer.{i}.{sub}.adapter_fusion_layer.{fname}."
                if prefix + "query.weight" in weights:
                    fusion[(i, loc)] = BertFusion(fusion_config, weights, prefix)
    hcfg = json.load(open(os.path.join(spec["head"], "head_config.json")))
    head = load_bin(os.path.join(spec["head"], "pytorch_model_head.bin"))
    hname = hcfg["name"]
    assert hcfg["config"]["layers"] == 2 and hcfg["config"]["activation_function"] == "tanh"

    def ln(prefix):
        return lambda x: F.layer_norm(x, (d,), sd[prefix + ".weight"], sd[prefix + ".bias"], eps)

    def bottleneck_layer_forward(hidden_states, residual_input, layer_norm, key):
        modules = adapters.get(key, {})
        if not modules:
            return layer_norm(hidden_states + residual_input)
        input_hidden_states = hidden_states
        if fusion_config is None:
            a = modules[names[0]]
            h, _, res = a.pre_forward(hidden_states, residual_input, layer_norm)
            h = a.forward(h, res)[0]
            return a.post_forward(h, input_hidden_states, residual_input, layer_norm)
        last = modules[names[-1]]
        h, query, res = last.pre_forward(hidden_states, residual_input, layer_norm, fusion_config=fusion_config)
        ups = [modules[n].forward(h, res)[2] for n in names if n in modules]
        up_list = torch.stack(ups).permute(1, 2, 0, 3)
        h = fusion[key].forward(query, up_list, up_list, res)
        return last.post_forward(h, input_hidden_states, residual_input, layer_norm)

    act = ACT[hf.get("hidden_act", "gelu")]
    out = []
    with torch.no_grad():
        for ids in spec["ids"]:
            T = len(ids)
            x = torch.tensor([ids])
            h = sd["embeddings.word_embeddings.weight"][x] + sd["embeddings.position_embeddings.weight"][:T][None] + sd["embeddings.token_type_embeddings.weight"][0]
            h = ln("embeddings.LayerNorm")(h)
            dh = d // H
            for i in range(L):
                p = f"encoder.layer.{i}."
                def lin(z, n, i=i, p=p):
                    y = F.linear(z, sd[p + n + ".weight"], sd[p + n + ".bias"])
                    return loras[(i, n)](z, y) if (i, n) in loras else y
                heads = lambda z: z.view(1, T, H, dh).permute(0, 2, 1, 3)
                q, k, v = heads(lin(h, "attention.self.query")), heads(lin(h, "attention.self.key")), heads(lin(h, "attention.self.value"))
                if i in prefixes:
                    # PrefixTuningLayer.compose_single: the prefix before the tokens' keys and values (no padding
                    # here, so the mask's prefix part, zeros, changes nothing)
                    k, v = torch.cat([prefixes[i][0], k], dim=2), torch.cat([prefixes[i][1], v], dim=2)
                probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)
                ctx = (probs @ v).permute(0, 2, 1, 3).reshape(1, T, d)
                attn = lin(ctx, "attention.output.dense")
                h1 = bottleneck_layer_forward(attn, h, ln(p + "attention.output.LayerNorm"), (i, "mh_adapter"))
                ffn = lin(act(lin(h1, "intermediate.dense")), "output.dense")
                h = bottleneck_layer_forward(ffn, h1, ln(p + "output.LayerNorm"), (i, "output_adapter"))
            cls = h[:, 0]
            hidden = torch.tanh(F.linear(cls, head[f"heads.{hname}.1.weight"], head[f"heads.{hname}.1.bias"]))
            logits = F.linear(hidden, head[f"heads.{hname}.4.weight"], head[f"heads.{hname}.4.bias"])
            out.append(logits[0].tolist())
    print(json.dumps({"logits": out}))


if __name__ == "__main__":
    main()
