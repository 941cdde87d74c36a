// Package serving decides which inference worker serves a model, from what
// the Hugging Face Hub says of it (pipeline_tag, library_name), never from
// the text of its id: RunPod's vLLM worker for text generation, the
// orchestrator's own worker (inference/) for the tasks below, and nothing
// for the rest, which fail before any GPU is paid for.
package serving

import (
	"fmt"
	"strings"
)

// Worker is the image family that serves a model.
type Worker string

// Workers.
const (
	// VLLM is RunPod's vLLM worker (runpod/worker-v1-vllm): text generation.
	VLLM Worker = "vllm"
	// Inference is the orchestrator's own worker (inference/, INFERENCE_IMAGE).
	Inference Worker = "inference"
)

// The Hub pipeline tags the inference worker serves; the worker receives the
// tag as VISGATE_TASK.
const (
	TaskTextToImage             = "text-to-image"
	TaskSpeechRecognition       = "automatic-speech-recognition"
	TaskSentenceSimilarity      = "sentence-similarity"
	TaskFeatureExtraction       = "feature-extraction"
	TaskFillMask                = "fill-mask"
	TaskTextClassification      = "text-classification"
	TaskTokenClassification     = "token-classification"
	TaskImageClassification     = "image-classification"
	LibraryDiffusers            = "diffusers"
	LibraryTransformers         = "transformers"
	LibrarySentenceTransformers = "sentence-transformers"
)

// Plan is how a model is served.
type Plan struct {
	Worker  Worker
	Task    string // the Hub's pipeline tag; VISGATE_TASK for the inference worker
	Library string // VISGATE_LIBRARY for the inference worker
}

// textGeneration are the pipeline tags vLLM serves.
var textGeneration = map[string]bool{"text-generation": true, "image-text-to-text": true, "conversational": true}

// served maps pipeline tag → the libraries the inference worker loads it
// with: the worker's own table (inference/src/visgate_worker/tasks.json),
// which a test holds this to.
var served = map[string][]string{
	TaskTextToImage:         {LibraryDiffusers},
	TaskSpeechRecognition:   {LibraryTransformers},
	TaskSentenceSimilarity:  {LibrarySentenceTransformers},
	TaskFeatureExtraction:   {LibrarySentenceTransformers, LibraryTransformers},
	TaskFillMask:            {LibraryTransformers},
	TaskTextClassification:  {LibraryTransformers},
	TaskTokenClassification: {LibraryTransformers},
	TaskImageClassification: {LibraryTransformers},
}

// Supported describes what is served, for messages.
const Supported = "text generation (RunPod's vLLM worker); text-to-image (diffusers), " +
	"automatic-speech-recognition (transformers), sentence-similarity (sentence-transformers), " +
	"feature-extraction (sentence-transformers or transformers), and fill-mask, text-classification, " +
	"token-classification and image-classification (transformers) on the orchestrator's inference worker"

// UnservedError says that no worker serves a model's family.
type UnservedError struct {
	Model, PipelineTag, Library string
}

func (e *UnservedError) Error() string {
	var what string
	switch {
	case e.PipelineTag == "" && e.Library == "":
		what = "has no pipeline tag or library on the Hub"
	case e.PipelineTag == "":
		what = fmt.Sprintf("is a %s model with no pipeline tag on the Hub", e.Library)
	case e.Library == "":
		what = fmt.Sprintf("is a %s model with no library on the Hub", e.PipelineTag)
	default:
		what = fmt.Sprintf("is a %s model for %s", e.PipelineTag, e.Library)
	}
	return fmt.Sprintf("Hugging Face model %s %s, a family no inference worker serves; served are %s", e.Model, what, Supported)
}

// For returns how model is served, or an *UnservedError naming its family.
func For(model, pipelineTag, library string) (Plan, error) {
	tag, lib := strings.TrimSpace(pipelineTag), strings.TrimSpace(library)
	if textGeneration[tag] {
		return Plan{Worker: VLLM, Task: tag, Library: lib}, nil
	}
	for _, l := range served[tag] {
		if l == lib {
			return Plan{Worker: Inference, Task: tag, Library: lib}, nil
		}
	}
	return Plan{}, &UnservedError{Model: model, PipelineTag: tag, Library: lib}
}
