/**
 * The layers of daemon/ and what each may import: `npm test` (and `npm run lint`) fails on an
 * import that runs against this table, on any import circle, and on I/O in pure code.
 * docs/architecture.md explains the layers; keep the two in step.
 *
 * A layer may import itself and the layers it lists. Layers not listed here (cli/, hooks/,
 * config/, and daemon.ts, main.ts, logger.ts, runtime-flags.ts at the top of daemon/) compose
 * the rest and may import anything below them; nothing below may import them.
 */
const LAYERS = {
  base: { path: '^daemon/base/', may: [] },
  gen: { path: '^daemon/gen/', may: ['base'] },
  // Pure: formats, parsers and verifiers; no file system, network, processes or native code.
  verify: { path: '^daemon/verify/', may: ['base', 'gen'], pure: true },
  // Pure: the policy schema and parser, the appraisers, rule matching.
  policy: { path: '^daemon/policy/', may: ['base', 'gen', 'verify'], pure: true },
  // Pure: one epoch's verdict from its evidence, and the epoch record codec.
  appraisal: { path: '^daemon/appraisal/', may: ['base', 'gen', 'verify', 'policy'], pure: true },
  native: { path: '^daemon/native\\.ts$', may: ['base'] },
  // Collection: hardware and the files the kernel exposes.
  evidence: { path: '^daemon/evidence/', may: ['base', 'gen', 'verify', 'native'] },
  // Sinks: the durable log and the metrics, told of things, never asking back.
  audit: { path: '^daemon/audit/', may: ['base', 'gen', 'verify'] },
  metrics: { path: '^daemon/metrics/', may: ['base'] },
  systemd: { path: '^daemon/systemd/', may: ['base', 'native'] },
  attestation: { path: '^daemon/attestation/', may: ['base', 'gen', 'verify', 'policy', 'appraisal', 'evidence', 'audit', 'metrics'] },
  lease: { path: '^daemon/lease/', may: ['base', 'gen', 'verify', 'policy', 'appraisal', 'audit', 'metrics'] },
  api: { path: '^daemon/api/', may: ['base', 'gen', 'verify', 'policy', 'appraisal', 'lease', 'native'] },
  // The client library speaks the wire format only; it never loads the server.
  client: { path: '^daemon/client/', may: ['base', 'gen'], extra: '^daemon/api/framing\\.ts$' },
  // Pure: enrollment's files and the AK certificate an enrolling party issues.
  enroll: { path: '^daemon/enroll/', may: ['base', 'verify'], pure: true },
  // The offline verifier: the pure appraisal the daemon runs, over a log read from files.
  auditor: { path: '^daemon/auditor/', may: ['base', 'gen', 'verify', 'policy', 'appraisal', 'audit'] },
};

const IO_MODULES = '^(node:)?(fs|fs/promises|net|child_process|dgram|cluster|worker_threads)$|^koffi$';
const layerOf = (name) => LAYERS[name].path;

const layerRules = Object.entries(LAYERS).map(([name, layer]) => ({
  name: `layer-${name}`,
  comment: `${name} may import only: ${[name, ...layer.may].join(', ')}`,
  severity: 'error',
  from: { path: layer.path },
  to: {
    path: '^daemon/',
    pathNot: [layer.path, ...layer.may.map(layerOf), ...(layer.extra ? [layer.extra] : [])],
  },
}));

const pureRules = Object.entries(LAYERS).filter(([, l]) => l.pure).map(([name, layer]) => ({
  name: `pure-${name}`,
  comment: `${name} is pure: no file system, network, processes, FFI or native addon`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: IO_MODULES },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    ...pureRules,
    {
      name: 'pure-auditor',
      comment: 'the log verifier is pure; only the folder reader touches files',
      severity: 'error',
      from: { path: '^daemon/auditor/', pathNot: '^daemon/auditor/verify-dir\\.ts$' },
      to: { path: IO_MODULES },
    },
    {
      name: 'no-circular',
      comment: 'no import circles, not even through types',
      severity: 'error',
      from: { path: '^daemon/' },
      to: { circular: true },
    },
    {
      name: 'native-addon-only-in-native-ts',
      comment: 'only daemon/native.ts loads the compiled addon',
      severity: 'error',
      from: { pathNot: '^daemon/native\\.ts$' },
      to: { path: '(^|/)build/(Release|Debug)/|\\.node$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.d.ts'] },
  },
};
