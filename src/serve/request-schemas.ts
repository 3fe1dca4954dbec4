/**
 * JSON schemas of the request bodies the server accepts (validated by Fastify before a handler
 * runs): the OpenAI completions and chat completions fields intscale honours. Unknown fields are
 * ignored, as OpenAI-compatible servers do, so existing clients' extra options do not fail.
 */
const sampling = {
  model: { type: 'string', minLength: 1 },
  max_tokens: { type: 'integer', minimum: 1 },
  temperature: { type: 'number', minimum: 0, maximum: 2 },
  top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  seed: { type: 'integer', minimum: 0 },
  stream: { type: 'boolean' },
  stop: {
    anyOf: [
      { type: 'string', minLength: 1 },
      { type: 'array', maxItems: 4, items: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 0 }] } },
      { type: 'null' },
    ],
  },
} as const;

export const completionSchema = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: { ...sampling, prompt: { type: 'string', minLength: 1 } },
} as const;

export const chatSchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...sampling,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: { role: { type: 'string', enum: ['system', 'user', 'assistant'] }, content: { type: 'string' } },
      },
    },
  },
} as const;

export interface SamplingBody {
  model: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stream?: boolean;
  stop?: string | (string | number)[] | null;
}
export interface CompletionBody extends SamplingBody { prompt: string }
export interface ChatBody extends SamplingBody { messages: { role: 'system' | 'user' | 'assistant'; content: string }[] }
