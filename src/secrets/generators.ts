// Rotation generators: new secret values made with node:crypto only (no
// hand-rolled randomness). A generated value is never logged; callers pass it
// straight to the store.
import { generateKeyPairSync, randomBytes, randomInt, randomUUID } from 'node:crypto';
import type {
  EcdsaCurve,
  GeneratorSpec,
  PasswordClass,
  PasswordGenerator,
  RandomBytesGenerator,
} from '../api/types.js';
import type { Properties } from '../providers/provider.js';

export const PASSWORD_ALPHABETS: Record<PasswordClass, string> = {
  lowercase: 'abcdefghijklmnopqrstuvwxyz',
  uppercase: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  digits: '0123456789',
  symbols: '!#$%&()*+,-./:;<=>?@[]^_{|}~',
};
const ALL_CLASSES: PasswordClass[] = ['lowercase', 'uppercase', 'digits', 'symbols'];

export const DEFAULT_PASSWORD_LENGTH = 32;
export const DEFAULT_RANDOM_BYTES = 32;
export const DEFAULT_RSA_BITS = 3072;
export const DEFAULT_CURVE: EcdsaCurve = 'P-256';

/** Parameters that cannot make a value (the CRD schema catches most; this is the controller's own check). */
export class GeneratorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GeneratorError';
  }
}

/** What a generator made: one value, or (key pairs) PEM properties `privateKey` and `publicKey`. */
export type Generated = { kind: 'value'; value: string } | { kind: 'properties'; properties: Properties };

/** Which generator a spec sets; throws unless exactly one. */
export function generatorName(spec: GeneratorSpec): keyof GeneratorSpec {
  const names = (Object.keys(spec) as (keyof GeneratorSpec)[]).filter((k) => spec[k] !== undefined);
  if (names.length !== 1 || names[0] === undefined)
    throw new GeneratorError(`rotation.generator must set exactly one generator, found ${names.length}`);
  return names[0];
}

export function isKeyPairGenerator(spec: GeneratorSpec): boolean {
  return spec.rsa !== undefined || spec.ecdsa !== undefined || spec.ed25519 !== undefined;
}

/** Makes a new value with the one generator the spec sets. */
export function generate(spec: GeneratorSpec): Generated {
  switch (generatorName(spec)) {
    case 'password':
      return { kind: 'value', value: generatePassword(spec.password ?? {}) };
    case 'randomBytes':
      return { kind: 'value', value: generateRandomBytes(spec.randomBytes ?? {}) };
    case 'uuid':
      return { kind: 'value', value: randomUUID() };
    case 'rsa':
      return { kind: 'properties', properties: rsaKeyPair(spec.rsa?.bits ?? DEFAULT_RSA_BITS) };
    case 'ecdsa':
      return { kind: 'properties', properties: ecdsaKeyPair(spec.ecdsa?.curve ?? DEFAULT_CURVE) };
    case 'ed25519':
      return { kind: 'properties', properties: ed25519KeyPair() };
  }
}

/** Checks parameters without generating (a spec problem surfaces before anything is written). */
export function validateGenerator(spec: GeneratorSpec): void {
  const name = generatorName(spec);
  if (name === 'password') passwordPlan(spec.password ?? {});
  if (name === 'randomBytes') {
    const n = spec.randomBytes?.length ?? DEFAULT_RANDOM_BYTES;
    if (!Number.isSafeInteger(n) || n < 1 || n > 1024) throw new GeneratorError('randomBytes.length must be 1 to 1024');
  }
  if (name === 'rsa' && ![2048, 3072, 4096].includes(spec.rsa?.bits ?? DEFAULT_RSA_BITS))
    throw new GeneratorError('rsa.bits must be 2048, 3072 or 4096');
  if (name === 'ecdsa' && !['P-256', 'P-384', 'P-521'].includes(spec.ecdsa?.curve ?? DEFAULT_CURVE))
    throw new GeneratorError('ecdsa.curve must be P-256, P-384 or P-521');
}

interface PasswordPlan {
  length: number;
  alphabets: { cls: PasswordClass; chars: string; minimum: number }[];
  all: string;
}

function passwordPlan(spec: PasswordGenerator): PasswordPlan {
  const length = spec.length ?? DEFAULT_PASSWORD_LENGTH;
  if (!Number.isSafeInteger(length) || length < 1 || length > 1024)
    throw new GeneratorError('password.length must be 1 to 1024');
  const classes = spec.classes && spec.classes.length > 0 ? [...new Set(spec.classes)] : ALL_CLASSES;
  const excluded = new Set(spec.exclude ?? '');
  const alphabets = classes.map((cls) => {
    const chars = [...PASSWORD_ALPHABETS[cls]].filter((c) => !excluded.has(c)).join('');
    if (chars.length === 0) throw new GeneratorError(`password: exclude removes every ${cls} character`);
    return { cls, chars, minimum: spec.minimum?.[cls] ?? 0 };
  });
  for (const [cls, n] of Object.entries(spec.minimum ?? {})) {
    if ((n ?? 0) > 0 && !classes.includes(cls as PasswordClass))
      throw new GeneratorError(`password: a minimum is set for ${cls}, which is not among classes`);
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0))
      throw new GeneratorError(`password: minimum.${cls} must be a whole number of at least 0`);
  }
  const required = alphabets.reduce((sum, a) => sum + a.minimum, 0);
  if (required > length)
    throw new GeneratorError(`password: the minimums per class add up to ${required}, more than length ${length}`);
  return { length, alphabets, all: alphabets.map((a) => a.chars).join('') };
}

/**
 * A password: each class's minimum drawn from that class, the rest from the
 * union of the classes, then shuffled (Fisher–Yates), every draw with
 * crypto.randomInt (uniform, no modulo bias).
 */
export function generatePassword(spec: PasswordGenerator = {}): string {
  const plan = passwordPlan(spec);
  const chars: string[] = [];
  const pick = (alphabet: string) => alphabet[randomInt(alphabet.length)] as string;
  for (const a of plan.alphabets) for (let i = 0; i < a.minimum; i++) chars.push(pick(a.chars));
  while (chars.length < plan.length) chars.push(pick(plan.all));
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j] as string, chars[i] as string];
  }
  return chars.join('');
}

export function generateRandomBytes(spec: RandomBytesGenerator = {}): string {
  const bytes = randomBytes(spec.length ?? DEFAULT_RANDOM_BYTES);
  try {
    return bytes.toString(spec.encoding ?? 'base64');
  } finally {
    bytes.fill(0);
  }
}

function rsaKeyPair(bits: number): Properties {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKey, publicKey };
}

const NODE_CURVES: Record<EcdsaCurve, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

function ecdsaKeyPair(curve: EcdsaCurve): Properties {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: NODE_CURVES[curve],
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKey, publicKey };
}

function ed25519KeyPair(): Properties {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKey, publicKey };
}
