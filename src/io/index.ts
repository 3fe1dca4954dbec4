/** Public API of src/io: checkpoints, configs and tokenizers on disk. */
export {
  DTYPES, FLOAT_DTYPES, type Dtype, dtypeBytes, isDtype,
  bf16ToF32, f16ToF32, f64ToF32, halfBitsToNumber, f32ToF16, f32ToF16Bits, f32ToBf16, f32ToBf16Bits,
} from './dtype.js';
export { createSafetensorsWriter, openSafetensors, writeSafetensors, type SafetensorsWriter, type SafetensorsFile, type TensorInfo, type TensorToWrite } from './safetensors.js';
export { openWeights, INDEX_FILE, SINGLE_FILE, type WeightSource } from './weight-source.js';
export { parseGenerationConfig, loadGenerationConfig, GENERATION_CONFIG_FILE, type GenerationConfig } from './generation-config.js';
export { loadTokenizer, type ModelTokenizer, type ChatMessage } from './tokenizer.js';
export { parseHubId, resolveHubModel, type HubId, type HubOptions, type HubProgress } from './hub.js';
export { ggufModelDir, type GgufOptions } from './gguf.js';
export { intscaleCacheDir } from './converted-cache.js';
export { llama2cModelDir, readLlama2cHeader, type Llama2cHeader, type Llama2cOptions } from './llama2c.js';
