package huggingface

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Family groups models by how they are served.
type Family string

// Families.
const (
	FamilyTextGeneration Family = "text-generation" // LLMs and VLMs, served by vLLM
	FamilyDiffusion      Family = "diffusion"       // diffusers pipelines (images, video)
	FamilyEncoder        Family = "encoder"         // embeddings, fill-mask, classification
	FamilySpeech         Family = "speech"          // speech recognition and synthesis
	FamilyOther          Family = "other"
)

// FamilyOf classifies a model from the Hub's pipeline_tag and library_name.
func FamilyOf(pipelineTag, libraryName string) Family {
	switch pipelineTag {
	case "text-generation", "image-text-to-text", "conversational":
		return FamilyTextGeneration
	case "text-to-image", "image-to-image", "text-to-video", "image-to-video",
		"unconditional-image-generation", "inpainting":
		return FamilyDiffusion
	case "feature-extraction", "sentence-similarity", "fill-mask", "text-classification",
		"token-classification", "question-answering", "zero-shot-classification", "text-ranking":
		return FamilyEncoder
	case "automatic-speech-recognition", "text-to-speech", "text-to-audio", "audio-classification":
		return FamilySpeech
	}
	switch libraryName {
	case "diffusers":
		return FamilyDiffusion
	case "sentence-transformers":
		return FamilyEncoder
	}
	return FamilyOther
}

// Estimate is the memory a model needs. See the package constants for the
// rules.
type Estimate struct {
	Parameters    int64 // total parameter count when known (safetensors metadata), else 0
	WeightBytes   int64 // bytes of ONE copy of the weights in the dtype they will be loaded in
	DownloadBytes int64 // bytes of the weight files the container will download
	KVCacheBytes  int64 // text generation only: KV cache at DefaultContextLength, batch 1
	VRAMGB        int   // GiB, rounded up: WeightBytes × (1 + OverheadPercent/100) + KVCacheBytes
	// Files is what a worker downloads to serve the model, sorted: the
	// weight files the estimate counted plus the configuration and
	// tokenizer files beside them. See selectFiles for the rule.
	Files []string
}

// The VRAM rule.
//
//   - Weights, when the Hub reports safetensors.parameters: Σ count × bytes
//     of the dtype. F32 and F64 weights of text-generation, diffusion and
//     speech models count as 16-bit, because that is how they are served
//     (vLLM's dtype "auto" runs FP32 checkpoints in FP16; diffusers and
//     speech pipelines are loaded in fp16/bf16). Encoders and other models
//     keep the stored dtype (transformers loads FP32 by default). Integer
//     and 8/4-bit dtypes (quantized checkpoints) keep their size.
//   - Weights of a diffusers repo (no safetensors metadata): for each
//     component of model_index.json, the files of ONE variant in its folder,
//     in order of preference fp16 .safetensors, bf16 .safetensors,
//     .safetensors, fp16 .bin, bf16 .bin, .bin; single-file checkpoints at
//     the repo root are never counted. Sizes are taken as stored, so a repo
//     holding only FP32 component weights is over-estimated (never under).
//   - Any other repo: the root weight set PyTorch libraries load (the
//     "model" safetensors series, else the largest .bin series), else the
//     largest single weight set among its files (one format, one shard
//     series), as stored.
//   - The same sets are what the worker downloads (Files), with the
//     configuration and tokenizer files beside them (selectFiles).
//   - Overhead: OverheadPercent of the weights (CUDA context, activations,
//     allocator fragmentation).
//   - Text generation adds a KV cache of 2 (K and V) × layers × KV heads ×
//     head dim × context × 2 bytes, context = min(DefaultContextLength, the
//     model's maximum), batch 1.
//   - VRAMGB rounds the total up to whole GiB (2^30 bytes, the unit GPU
//     memory sizes are quoted in), at least 1.
const (
	OverheadPercent      = 20
	DefaultContextLength = 4096
	kvBytesPerValue      = 2
	gib                  = 1 << 30
)

func (c *Client) estimate(ctx context.Context, model string, info *modelInfo, family Family, token secret.Secret) (Estimate, error) {
	var est Estimate
	var chosen []weightSet // the weights the worker downloads
	var components []string
	switch {
	case info.Safetensors != nil && len(info.Safetensors.Parameters) > 0:
		est.Parameters, est.WeightBytes, est.DownloadBytes = weightsFromParameters(info.Safetensors, family)
		set := preferredRootSafetensors(info.Siblings)
		if set.bytes > 0 {
			est.DownloadBytes = set.bytes
		} else {
			set = loadableRootSet(info.Siblings)
		}
		chosen = append([]weightSet{set}, moduleSets(info)...)
	case hasSibling(info, "model_index.json") || info.LibraryName == "diffusers":
		var index map[string]json.RawMessage
		found, err := c.fetchFile(ctx, model, info.SHA, "model_index.json", token, &index)
		if err != nil {
			return Estimate{}, err
		}
		if found {
			components = diffusersComponents(index)
			chosen = diffusersSets(components, info.Siblings)
			for _, set := range chosen {
				est.WeightBytes += set.bytes
			}
		}
		if est.WeightBytes == 0 {
			set := largestWeightSet(info.Siblings)
			chosen, components = []weightSet{set}, nil
			est.WeightBytes = set.bytes
		}
		est.DownloadBytes = est.WeightBytes
	default:
		set := loadableRootSet(info.Siblings)
		if set.bytes == 0 {
			set = largestWeightSet(info.Siblings)
		}
		chosen = append([]weightSet{set}, moduleSets(info)...)
		est.WeightBytes = set.bytes
		est.DownloadBytes = est.WeightBytes
	}
	est.Files = selectFiles(info.Siblings, chosen, components)

	if family == FamilyTextGeneration && hasSibling(info, "config.json") {
		var cfg map[string]any
		found, err := c.fetchFile(ctx, model, info.SHA, "config.json", token, &cfg)
		if err != nil {
			return Estimate{}, err
		}
		if found {
			est.KVCacheBytes = kvCacheBytes(cfg, DefaultContextLength)
		}
	}
	est.VRAMGB = vramGB(est.WeightBytes, est.KVCacheBytes)
	return est, nil
}

// vramGB applies the overhead and rounds up to whole GiB.
func vramGB(weights, kv int64) int {
	total := weights + weights*OverheadPercent/100 + kv
	gb := int((total + gib - 1) / gib)
	return max(gb, 1)
}

// dtypeBits is the storage width of each safetensors dtype.
var dtypeBits = map[string]int64{
	"F64": 64, "F32": 32, "F16": 16, "BF16": 16,
	"F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4,
	"I64": 64, "I32": 32, "I16": 16, "I8": 8, "I4": 4,
	"U64": 64, "U32": 32, "U16": 16, "U8": 8, "U4": 4,
	"BOOL": 8,
}

// unknownDtypeBits is assumed for a dtype this table does not know:
// over-estimating is the safe side.
const unknownDtypeBits = 32

// weightsFromParameters returns the parameter count, the bytes of the weights
// as loaded, and as stored.
func weightsFromParameters(st *safetensors, family Family) (params, loaded, stored int64) {
	halfPrecision := family == FamilyTextGeneration || family == FamilyDiffusion || family == FamilySpeech
	var loadedBits, storedBits int64
	for dtype, n := range st.Parameters {
		bits, ok := dtypeBits[strings.ToUpper(dtype)]
		if !ok {
			bits = unknownDtypeBits
		}
		params += n
		storedBits += n * bits
		if halfPrecision && (strings.EqualFold(dtype, "F32") || strings.EqualFold(dtype, "F64")) {
			bits = 16
		}
		loadedBits += n * bits
	}
	if st.Total > 0 {
		params = st.Total
	}
	return params, (loadedBits + 7) / 8, (storedBits + 7) / 8
}

// weightSet is one copy of a model's weights: the files of one format and
// one shard series in one folder.
type weightSet struct {
	dir, base, variant, ext string
	files                   []string
	bytes                   int64
}

var shardSuffix = regexp.MustCompile(`-\d{5}-of-\d{5}$`)

// weightExts are the extensions of weight files, by format.
var weightExts = map[string]bool{
	"safetensors": true, "bin": true, "pt": true, "pth": true, "ckpt": true, "h5": true,
	"msgpack": true, "gguf": true, "onnx": true, "onnx_data": true, "ot": true, "tflite": true,
}

// weightSets groups the weight files among siblings. The variant of
// "unet/diffusion_pytorch_model.fp16.safetensors" is "fp16"; shards of one
// series ("model-00001-of-00004.safetensors") share a set.
func weightSets(siblings []sibling) []weightSet {
	byKey := map[string]*weightSet{}
	var order []string
	for _, s := range siblings {
		dir, file := path.Split(s.RFilename)
		dot := strings.LastIndexByte(file, '.')
		if dot <= 0 {
			continue
		}
		name, ext := file[:dot], strings.ToLower(file[dot+1:])
		if !weightExts[ext] {
			continue
		}
		name = shardSuffix.ReplaceAllString(name, "")
		base, variant, _ := strings.Cut(name, ".")
		key := dir + "\x00" + name + "\x00" + ext
		set, ok := byKey[key]
		if !ok {
			set = &weightSet{dir: strings.TrimSuffix(dir, "/"), base: base, variant: variant, ext: ext}
			byKey[key] = set
			order = append(order, key)
		}
		set.files = append(set.files, s.RFilename)
		set.bytes += s.size()
	}
	sets := make([]weightSet, 0, len(order))
	for _, k := range order {
		sets = append(sets, *byKey[k])
	}
	return sets
}

// largestWeightSet is the biggest single copy of the weights in the repo.
func largestWeightSet(siblings []sibling) weightSet {
	var best weightSet
	for _, s := range weightSets(siblings) {
		if s.bytes > best.bytes {
			best = s
		}
	}
	return best
}

// preferredRootSafetensors is the safetensors set at the repo root that
// transformers and vLLM load: the "model" series when there is one (repos
// also hold consolidated or fp32 copies), else the largest.
func preferredRootSafetensors(siblings []sibling) weightSet {
	var model, largest weightSet
	for _, s := range weightSets(siblings) {
		if s.dir != "" || s.ext != "safetensors" {
			continue
		}
		if s.base == "model" && s.variant == "" {
			model = s
		}
		if s.bytes > largest.bytes {
			largest = s
		}
	}
	if model.bytes > 0 {
		return model
	}
	return largest
}

// componentPreference is the order in which one variant of a diffusers
// component's weights is chosen.
var componentPreference = []struct{ variant, ext string }{
	{"fp16", "safetensors"}, {"bf16", "safetensors"}, {"", "safetensors"},
	{"fp16", "bin"}, {"bf16", "bin"}, {"", "bin"},
}

// diffusersSets is one variant of each component's weights. Components
// are the model_index.json entries whose value is a [library, class] pair;
// their weights are the files directly in the folder of the same name.
func diffusersSets(components []string, siblings []sibling) []weightSet {
	byDir := map[string][]weightSet{}
	for _, s := range weightSets(siblings) {
		byDir[s.dir] = append(byDir[s.dir], s)
	}
	var out []weightSet
	for _, comp := range components {
		if set := chooseComponentSet(byDir[comp]); set.bytes > 0 || len(set.files) > 0 {
			out = append(out, set)
		}
	}
	return out
}

func diffusersComponents(index map[string]json.RawMessage) []string {
	var out []string
	for name, raw := range index {
		if strings.HasPrefix(name, "_") {
			continue
		}
		var pair []*string
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 || pair[0] == nil || pair[1] == nil {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// chooseComponentSet picks one set among a component folder's weight sets:
// the first in componentPreference, else the smallest other safetensors or
// .bin set (a non_ema copy, say), else nothing.
func chooseComponentSet(sets []weightSet) weightSet {
	for _, p := range componentPreference {
		for _, s := range sets {
			if s.variant == p.variant && s.ext == p.ext {
				return s
			}
		}
	}
	var best weightSet
	for _, s := range sets {
		if (s.ext == "safetensors" || s.ext == "bin") && (best.bytes == 0 || s.bytes < best.bytes) {
			best = s
		}
	}
	return best
}

// loadableRootSet is the root weight set PyTorch libraries load: the
// preferred safetensors set, else the largest .bin set (pytorch_model*.bin;
// TensorFlow, Flax, ONNX and other copies are never picked), else nothing.
func loadableRootSet(siblings []sibling) weightSet {
	if set := preferredRootSafetensors(siblings); set.bytes > 0 {
		return set
	}
	var best weightSet
	for _, s := range weightSets(siblings) {
		if s.dir == "" && s.ext == "bin" && s.bytes > best.bytes {
			best = s
		}
	}
	return best
}

// otherRuntimeDirs hold copies of the model for other runtimes; nothing in
// them is downloaded.
var otherRuntimeDirs = map[string]bool{
	"onnx": true, "openvino": true, "coreml": true, "tf": true, "flax": true, "mlx": true,
	"gguf": true, "original": true, "tflite": true, "rust": true,
}

// moduleSets are the weights of a sentence-transformers model's extra
// modules (2_Dense/, ...): one set per folder, chosen like a diffusers
// component's. Other libraries keep their weights at the root.
func moduleSets(info *modelInfo) []weightSet {
	if info.LibraryName != "sentence-transformers" {
		return nil
	}
	byDir := map[string][]weightSet{}
	var dirs []string
	for _, s := range weightSets(info.Siblings) {
		if s.dir == "" || strings.Contains(s.dir, "/") || otherRuntimeDirs[s.dir] {
			continue
		}
		if _, ok := byDir[s.dir]; !ok {
			dirs = append(dirs, s.dir)
		}
		byDir[s.dir] = append(byDir[s.dir], s)
	}
	sort.Strings(dirs)
	var out []weightSet
	for _, d := range dirs {
		if set := chooseComponentSet(byDir[d]); len(set.files) > 0 {
			out = append(out, set)
		}
	}
	return out
}

// shardIndex matches a shard index, "model.safetensors.index.json" or
// "diffusion_pytorch_model.safetensors.index.fp16.json": base, ext, variant.
var shardIndex = regexp.MustCompile(`^([^.]+)\.([a-z_]+)\.index(?:\.([^.]+))?\.json$`)

// supportExts are the extensions of the configuration and tokenizer files a
// model needs beside its weights (config.json, tokenizer.json, vocab.txt,
// merges.txt, spiece.model, chat templates).
var supportExts = map[string]bool{"json": true, "txt": true, "model": true, "tiktoken": true, "jinja": true}

// selectFiles is the download list: the chosen weight files, and every
// support file (supportExts, not a weight format) at the root or, in a
// diffusers repo, in a component folder, or elsewhere in a folder that does
// not hold another runtime's copy (onnx/, openvino/, original/, ...).
// README and .gitattributes are text but not needed; images, audio and
// other weight copies never are.
func selectFiles(siblings []sibling, chosen []weightSet, components []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, set := range chosen {
		for _, f := range set.files {
			add(f)
		}
	}
	isComponent := map[string]bool{}
	for _, c := range components {
		isComponent[c] = true
	}
	chosenKey := map[string]bool{}
	for _, set := range chosen {
		chosenKey[set.dir+"\x00"+set.base+"\x00"+set.variant+"\x00"+set.ext] = true
	}
	for _, s := range siblings {
		name := s.RFilename
		dir, file := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		ext := strings.ToLower(strings.TrimPrefix(path.Ext(file), "."))
		if !supportExts[ext] || strings.HasPrefix(file, ".") || strings.EqualFold(file, "README.md") {
			continue
		}
		if m := shardIndex.FindStringSubmatch(file); m != nil && !chosenKey[dir+"\x00"+m[1]+"\x00"+m[3]+"\x00"+m[2]] {
			continue // the shard index of a weight set that was not chosen
		}
		top, _, _ := strings.Cut(dir, "/")
		switch {
		case dir == "":
		case components != nil && !isComponent[top]:
			continue
		case otherRuntimeDirs[top]:
			continue
		}
		add(name)
	}
	sort.Strings(out)
	return out
}

// kvCacheBytes is the KV cache of one sequence of up to contextLen tokens,
// from a transformers config.json (the text_config of multimodal models).
// Unknown shapes give 0.
func kvCacheBytes(cfg map[string]any, contextLen int64) int64 {
	for _, nested := range []string{"text_config", "llm_config", "language_config"} {
		if sub, ok := cfg[nested].(map[string]any); ok && intField(sub, "num_hidden_layers") > 0 {
			cfg = sub
			break
		}
	}
	layers := intField(cfg, "num_hidden_layers", "n_layer", "num_layers")
	heads := intField(cfg, "num_attention_heads", "n_head")
	hidden := intField(cfg, "hidden_size", "n_embd", "d_model")
	kvHeads := intField(cfg, "num_key_value_heads", "n_head_kv", "num_kv_heads")
	if kvHeads == 0 {
		if b, _ := cfg["multi_query"].(bool); b {
			kvHeads = 1
		} else {
			kvHeads = heads
		}
	}
	headDim := intField(cfg, "head_dim")
	if headDim == 0 && heads > 0 {
		headDim = hidden / heads
	}
	if maxPos := intField(cfg, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length"); maxPos > 0 {
		contextLen = min(contextLen, maxPos)
	}
	if layers == 0 || kvHeads == 0 || headDim == 0 {
		return 0
	}
	return 2 * layers * kvHeads * headDim * contextLen * kvBytesPerValue
}

// intField returns the first of keys that holds a positive number.
func intField(m map[string]any, keys ...string) int64 {
	for _, k := range keys {
		if f, ok := m[k].(float64); ok && f > 0 {
			return int64(f)
		}
	}
	return 0
}

// String describes the estimate for logs.
func (e Estimate) String() string {
	return fmt.Sprintf("%d GiB VRAM (weights %.1f GB, KV cache %.2f GB, download %.1f GB)",
		e.VRAMGB, float64(e.WeightBytes)/1e9, float64(e.KVCacheBytes)/1e9, float64(e.DownloadBytes)/1e9)
}
