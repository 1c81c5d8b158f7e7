/**
 * NVIDIA Reference Integrity Manifests: ISO/IEC 19770-2 SWID tags in the TCG RIM
 * information model. One RIM covers either a driver version or a VBIOS version of one chip.
 * <Meta colloquialVersion=...> names the version; <Payload> holds one <Resource
 * type="Measurement"> per measurement index with `active`, `alternatives`=N and the allowed
 * values Hash0..Hash{N-1} (SHA-384, hex) in the xmlenc#sha384 namespace.
 *
 * RIM index k is SPDM measurement block k+1: RIMs count from 0, SPDM from 1.
 *
 * parseRimXml reads content only; trust comes from verifyRim (rim-signature.ts), which
 * parses what the signature covered with this same function.
 */
import type { Element } from '@xmldom/xmldom';
import { AttestdError } from '../../base/errors.js';
import { childElements, onlyChild, parseXml, rimText } from './xml.js';

export const SWID_NS = 'http://standards.iso.org/iso/19770/-2/2015/schema.xsd';
const TCG_RIM_NS = 'https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/';
const SHA384_NS = 'http://www.w3.org/2001/04/xmlenc#sha384';
const MAX_RESOURCES = 256;
const MAX_ALTERNATIVES = 16;
const MAX_ATTRIBUTE = 256;

export interface RimMeasurement {
  /** RIM index, 0-based. */
  index: number;
  /** The SPDM measurement block it describes (index + 1). */
  spdmIndex: number;
  name: string;
  active: boolean;
  /** Digest size in bytes (48 for SHA-384). */
  size: number;
  /** Allowed values, lowercase hex. */
  allowedHex: string[];
}

export interface Rim {
  tagId: string;
  /** SoftwareIdentity name, e.g. "GH100". */
  name: string;
  /** The driver or VBIOS version this RIM is for, e.g. "545.00" or "96.00.5E.00.01". */
  colloquialVersion: string;
  product: string;
  platformModel: string;
  measurements: RimMeasurement[];
}

function invalid(why: string): never {
  throw new AttestdError('RIM_INVALID', `RIM: ${why}`);
}

function attr(el: Element, name: string, required: true): string;
function attr(el: Element, name: string, required: false): string | undefined;
function attr(el: Element, name: string, required: boolean): string | undefined {
  if (!el.hasAttribute(name)) return required ? invalid(`<${el.localName ?? ''}> has no ${name}`) : undefined;
  const value = el.getAttribute(name) ?? '';
  if (value.length > MAX_ATTRIBUTE) invalid(`${name} is over ${MAX_ATTRIBUTE} characters`);
  return value;
}

function decimal(text: string, max: number, what: string): number {
  if (!/^(0|[1-9][0-9]{0,5})$/.test(text) || Number(text) > max) invalid(`${what} "${text.slice(0, 20)}" is not an integer 0..${max}`);
  return Number(text);
}

function bool(text: string, what: string): boolean {
  const t = text.toLowerCase();
  if (t !== 'true' && t !== 'false') invalid(`${what} "${text.slice(0, 20)}" is not True or False`);
  return t === 'true';
}

function measurement(el: Element): RimMeasurement {
  if (attr(el, 'type', true) !== 'Measurement') invalid(`a Resource of type "${attr(el, 'type', true).slice(0, 40)}"`);
  const index = decimal(attr(el, 'index', true), 254, 'Resource index');
  const size = decimal(attr(el, 'size', true), 64, `Resource ${index} size`);
  if (size === 0) invalid(`Resource ${index} has size 0`);
  const count = decimal(attr(el, 'alternatives', true), MAX_ALTERNATIVES, `Resource ${index} alternatives`);
  if (count === 0) invalid(`Resource ${index} has no alternatives`);
  const allowedHex: string[] = [];
  for (let i = 0; i < count; i++) {
    if (!el.hasAttributeNS(SHA384_NS, `Hash${i}`)) invalid(`Resource ${index} lacks its SHA-384 Hash${i}`);
    const hash = el.getAttributeNS(SHA384_NS, `Hash${i}`) ?? '';
    if (hash.length !== size * 2 || !/^[0-9a-fA-F]+$/.test(hash)) invalid(`Resource ${index} Hash${i} is not ${size} bytes of hex`);
    allowedHex.push(hash.toLowerCase());
  }
  return {
    index,
    spdmIndex: index + 1,
    name: attr(el, 'name', false) ?? '',
    active: bool(attr(el, 'active', true), `Resource ${index} active`),
    size,
    allowedHex,
  };
}

/** Reads a RIM's content from its root element. */
export function rimFromElement(root: Element): Rim {
  if (root.namespaceURI !== SWID_NS || root.localName !== 'SoftwareIdentity') invalid('the root is not a SWID SoftwareIdentity');
  const meta = onlyChild(root, SWID_NS, 'Meta');
  const payload = onlyChild(root, SWID_NS, 'Payload');
  const resources = childElements(payload, SWID_NS, 'Resource');
  if (resources.length === 0) invalid('the Payload holds no Resource');
  if (resources.length > MAX_RESOURCES) invalid(`more than ${MAX_RESOURCES} Resources`);
  const measurements = resources.map(measurement);
  const seen = new Set<number>();
  for (const m of measurements) {
    if (seen.has(m.index)) invalid(`Resource index ${m.index} appears twice`);
    seen.add(m.index);
  }
  const colloquialVersion = attr(meta, 'colloquialVersion', true);
  if (colloquialVersion === '') invalid('Meta colloquialVersion is empty');
  return {
    tagId: attr(root, 'tagId', true),
    name: attr(root, 'name', false) ?? '',
    colloquialVersion,
    product: attr(meta, 'product', false) ?? '',
    platformModel: meta.getAttributeNS(TCG_RIM_NS, 'PlatformModel') ?? '',
    measurements: measurements.sort((a, b) => a.index - b.index),
  };
}

/** VBIOS versions are five dot-separated hex pairs ("96.00.5E.00.01"); driver versions are not. */
const VBIOS_VERSION = /^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$/;

/** Whether a RIM is for a driver or a VBIOS, read from the form of its version. */
export function rimKind(rim: Pick<Rim, 'colloquialVersion'>): 'driver' | 'vbios' {
  return VBIOS_VERSION.test(rim.colloquialVersion) ? 'vbios' : 'driver';
}

/** Parses a RIM without checking its signature: for display and tests, never for trust. */
export function parseRimXml(xml: string | Uint8Array): Rim {
  const doc = parseXml(rimText(xml));
  return rimFromElement(doc.documentElement as Element);
}
