/*
 * A stand-in for libnvidia-ml.so.1 with the entry points attestd binds, so the real koffi
 * binding runs in tests on machines without a GPU. Values come from the file named by
 * FAKE_NVML_CONFIG, re-read on every nvmlInit_v2, one "key=value" per line:
 *
 *   driver_version=550.90.07        nvml_version=12.550.90.07   cuda_driver_version=12040
 *   gpu_count=2
 *   gpu.0.name=...  gpu.0.uuid=...  gpu.0.serial=...  gpu.0.pci_bus_id=...
 *   gpu.0.vbios_version=...  gpu.0.inforom_version=...
 *   gpu.0.ecc_mode=1  gpu.0.mig_mode=0  gpu.0.persistence_mode=1     (-1: not supported)
 *   cc.supported=1  cc.environment=2  cc.feature=1  cc.devtools=0  cc.gpus_ready=1
 *   fail.nvmlDeviceGetUUID=15       (that function returns 15 from then on)
 *   delay_ms=200                    (every call sleeps this long first)
 *
 * With gpu.N.attestation_key (a PEM private key, ECDSA P-384) the GPU answers
 * nvmlDeviceGetConfComputeGpuAttestationReport with an SPDM 1.1 GET_MEASUREMENTS request and
 * MEASUREMENTS response over the caller's nonce, signed at call time with that key as a GPU
 * does (ECDSA P-384, SHA-384, r || s):
 *   gpu.0.attestation_key=/path/leaf.key   gpu.0.attestation_chain=/path/chain.pem (PEM, leaf first)
 *   gpu.0.measurements=HEX,HEX,...         (blocks 1.., each a 48-byte digest in hex)
 *   gpu.0.report_vbios=96.00.9F.00.01      (the VBIOS the report states; default vbios_version)
 *   gpu.0.report_trailing=1                (that many zero bytes after the signature)
 * The report's opaque data holds the driver version and the VBIOS version. Without a key the
 * report is a synthetic tag, the nonce and the UUID (not an SPDM message).
 *
 * '#' starts a comment line; unknown keys, malformed and over-long lines are ignored, and
 * values are truncated to their buffers. A missing or unreadable file makes nvmlInit_v2
 * return NVML_ERROR_DRIVER_NOT_LOADED.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

typedef int nvmlReturn_t;
typedef struct fake_gpu *nvmlDevice_t;

enum {
  OK = 0, UNINITIALIZED = 1, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3,
  INSUFFICIENT_SIZE = 7, DRIVER_NOT_LOADED = 9,
};

#define MAX_GPUS 16
#define MAX_FAILS 16
#define STR 96
#define PATH 512
#define MEASUREMENTS_HEX 4096

struct fake_gpu {
  char name[STR], uuid[STR], serial[STR], pci_bus_id[32], vbios[STR], inforom[STR];
  long ecc, mig, persistence;
  char key[PATH], chain[PATH], measurements[MEASUREMENTS_HEX], report_vbios[STR];
  long trailing;
};

static struct {
  char driver[STR], nvml[STR];
  long cuda, count, delay_ms, cc_supported, cc_env, cc_feature, cc_devtools, cc_ready;
  struct fake_gpu gpus[MAX_GPUS];
  struct { char fn[64]; long rc; } fails[MAX_FAILS];
  int nfails;
} cfg;

static int initialised;

static void copy(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src);
}

static int parse_long(const char *s, long *out) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0') return 0;
  *out = v;
  return 1;
}

static void set_gpu(struct fake_gpu *g, const char *field, const char *value) {
  if (!strcmp(field, "name")) copy(g->name, sizeof g->name, value);
  else if (!strcmp(field, "uuid")) copy(g->uuid, sizeof g->uuid, value);
  else if (!strcmp(field, "serial")) copy(g->serial, sizeof g->serial, value);
  else if (!strcmp(field, "pci_bus_id")) copy(g->pci_bus_id, sizeof g->pci_bus_id, value);
  else if (!strcmp(field, "vbios_version")) copy(g->vbios, sizeof g->vbios, value);
  else if (!strcmp(field, "inforom_version")) copy(g->inforom, sizeof g->inforom, value);
  else if (!strcmp(field, "ecc_mode")) parse_long(value, &g->ecc);
  else if (!strcmp(field, "mig_mode")) parse_long(value, &g->mig);
  else if (!strcmp(field, "persistence_mode")) parse_long(value, &g->persistence);
  else if (!strcmp(field, "attestation_key")) copy(g->key, sizeof g->key, value);
  else if (!strcmp(field, "attestation_chain")) copy(g->chain, sizeof g->chain, value);
  else if (!strcmp(field, "measurements")) copy(g->measurements, sizeof g->measurements, value);
  else if (!strcmp(field, "report_vbios")) copy(g->report_vbios, sizeof g->report_vbios, value);
  else if (!strcmp(field, "report_trailing")) parse_long(value, &g->trailing);
}

static void set(const char *key, const char *value) {
  long n;
  if (!strcmp(key, "driver_version")) copy(cfg.driver, sizeof cfg.driver, value);
  else if (!strcmp(key, "nvml_version")) copy(cfg.nvml, sizeof cfg.nvml, value);
  else if (!strcmp(key, "cuda_driver_version")) parse_long(value, &cfg.cuda);
  else if (!strcmp(key, "delay_ms")) {
    if (parse_long(value, &n) && n >= 0 && n <= 60000) cfg.delay_ms = n;
  }
  else if (!strcmp(key, "gpu_count")) {
    if (parse_long(value, &n) && n >= 0 && n <= MAX_GPUS) cfg.count = n;
  } else if (!strcmp(key, "cc.supported")) parse_long(value, &cfg.cc_supported);
  else if (!strcmp(key, "cc.environment")) parse_long(value, &cfg.cc_env);
  else if (!strcmp(key, "cc.feature")) parse_long(value, &cfg.cc_feature);
  else if (!strcmp(key, "cc.devtools")) parse_long(value, &cfg.cc_devtools);
  else if (!strcmp(key, "cc.gpus_ready")) parse_long(value, &cfg.cc_ready);
  else if (!strncmp(key, "fail.", 5) && cfg.nfails < MAX_FAILS && parse_long(value, &n)) {
    copy(cfg.fails[cfg.nfails].fn, sizeof cfg.fails[0].fn, key + 5);
    cfg.fails[cfg.nfails++].rc = n;
  } else if (!strncmp(key, "gpu.", 4)) {
    char *end = NULL;
    long i = strtol(key + 4, &end, 10);
    if (end != key + 4 && *end == '.' && i >= 0 && i < MAX_GPUS) set_gpu(&cfg.gpus[i], end + 1, value);
  }
}

static int load_config(void) {
  const char *path = getenv("FAKE_NVML_CONFIG");
  FILE *f = path ? fopen(path, "r") : NULL;
  char line[MEASUREMENTS_HEX + 64];
  if (!f) return 0;
  memset(&cfg, 0, sizeof cfg);
  while (fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
      int c;
      while ((c = fgetc(f)) != EOF && c != '\n') {}
      continue;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    char *eq = strchr(line, '=');
    if (line[0] == '#' || !eq) continue;
    *eq = '\0';
    set(line, eq + 1);
  }
  fclose(f);
  return 1;
}

static nvmlReturn_t injected(const char *fn) {
  if (cfg.delay_ms > 0) {
    struct timespec t = { cfg.delay_ms / 1000, (cfg.delay_ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
  }
  for (int i = 0; i < cfg.nfails; i++) {
    if (!strcmp(cfg.fails[i].fn, fn)) return (nvmlReturn_t)cfg.fails[i].rc;
  }
  return OK;
}

#define ENTER(fn) do { if (!initialised) return UNINITIALIZED; \
    nvmlReturn_t rc_ = injected(fn); if (rc_ != OK) return rc_; } while (0)

static int valid(nvmlDevice_t d) {
  return d >= &cfg.gpus[0] && d < &cfg.gpus[cfg.count];
}

static nvmlReturn_t put(char *out, unsigned int length, const char *value) {
  if (!out) return INVALID_ARGUMENT;
  if (strlen(value) + 1 > length) return INSUFFICIENT_SIZE;
  memcpy(out, value, strlen(value) + 1);
  return OK;
}

nvmlReturn_t nvmlInit_v2(void) {
  if (!load_config()) return DRIVER_NOT_LOADED;
  nvmlReturn_t rc = injected("nvmlInit_v2");
  if (rc == OK) initialised = 1;
  return rc;
}

nvmlReturn_t nvmlShutdown(void) {
  if (!initialised) return UNINITIALIZED;
  initialised = 0;
  return OK;
}

const char *nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case OK: return "Success";
    case UNINITIALIZED: return "Uninitialized";
    case NOT_SUPPORTED: return "Not Supported";
    case DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int n) { ENTER(__func__); return put(v, n, cfg.driver); }
nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int n) { ENTER(__func__); return put(v, n, cfg.nvml); }

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
  ENTER(__func__);
  if (!v) return INVALID_ARGUMENT;
  *v = (int)cfg.cuda;
  return OK;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  ENTER(__func__);
  if (!count) return INVALID_ARGUMENT;
  *count = (unsigned int)cfg.count;
  return OK;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *d) {
  ENTER(__func__);
  if (!d || index >= cfg.count) return INVALID_ARGUMENT;
  *d = &cfg.gpus[index];
  return OK;
}

#define DEVICE_STRING(fn, field) \
  nvmlReturn_t fn(nvmlDevice_t d, char *v, unsigned int n) { \
    ENTER(#fn); if (!valid(d)) return INVALID_ARGUMENT; return put(v, n, d->field); }

DEVICE_STRING(nvmlDeviceGetName, name)
DEVICE_STRING(nvmlDeviceGetUUID, uuid)
DEVICE_STRING(nvmlDeviceGetSerial, serial)
DEVICE_STRING(nvmlDeviceGetVbiosVersion, vbios)
DEVICE_STRING(nvmlDeviceGetInforomImageVersion, inforom)

typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci) {
  ENTER(__func__);
  if (!valid(d) || !pci) return INVALID_ARGUMENT;
  memset(pci, 0, sizeof *pci);
  copy(pci->busId, sizeof pci->busId, d->pci_bus_id);
  copy(pci->busIdLegacy, sizeof pci->busIdLegacy, d->pci_bus_id + (strlen(d->pci_bus_id) > 12 ? 4 : 0));
  pci->pciDeviceId = 0x233010deu;
  return OK;
}

static nvmlReturn_t mode(long value, unsigned int *current, unsigned int *pending) {
  if (!current) return INVALID_ARGUMENT;
  if (value < 0) return NOT_SUPPORTED;
  *current = (unsigned int)value;
  if (pending) *pending = (unsigned int)value;
  return OK;
}

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pend) {
  ENTER(__func__); if (!valid(d)) return INVALID_ARGUMENT; return mode(d->ecc, cur, pend);
}
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pend) {
  ENTER(__func__); if (!valid(d)) return INVALID_ARGUMENT; return mode(d->mig, cur, pend);
}
nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t d, unsigned int *m) {
  ENTER(__func__); if (!valid(d)) return INVALID_ARGUMENT; return mode(d->persistence, m, NULL);
}

typedef struct { unsigned int environment, ccFeature, devToolsMode; } nvmlConfComputeSystemState_t;

nvmlReturn_t nvmlSystemGetConfComputeState(nvmlConfComputeSystemState_t *s) {
  ENTER(__func__);
  if (!s) return INVALID_ARGUMENT;
  if (!cfg.cc_supported) return NOT_SUPPORTED;
  s->environment = (unsigned int)cfg.cc_env;
  s->ccFeature = (unsigned int)cfg.cc_feature;
  s->devToolsMode = (unsigned int)cfg.cc_devtools;
  return OK;
}

nvmlReturn_t nvmlSystemGetConfComputeGpusReadyState(unsigned int *ready) {
  ENTER(__func__);
  if (!ready) return INVALID_ARGUMENT;
  if (!cfg.cc_supported) return NOT_SUPPORTED;
  *ready = (unsigned int)cfg.cc_ready;
  return OK;
}

typedef struct {
  unsigned int isCecAttestationReportPresent, attestationReportSize, cecAttestationReportSize;
  unsigned char nonce[0x20], attestationReport[0x2000], cecAttestationReport[0x1000];
} nvmlConfComputeGpuAttestationReport_t;

typedef struct {
  unsigned int certChainSize, attestationCertChainSize;
  unsigned char certChain[0x1000], attestationCertChain[0x1400];
} nvmlConfComputeGpuCertificate_t;

/* Appends `n` bytes to the report being built, refusing to run past its buffer. */
struct out { unsigned char *p; size_t len, cap; int overflow; };

static void emit(struct out *o, const void *b, size_t n) {
  if (o->overflow || n > o->cap - o->len) { o->overflow = 1; return; }
  memcpy(o->p + o->len, b, n);
  o->len += n;
}

static void emit_u8(struct out *o, unsigned v) { unsigned char b = (unsigned char)v; emit(o, &b, 1); }
static void emit_u16(struct out *o, unsigned v) { emit_u8(o, v & 0xff); emit_u8(o, (v >> 8) & 0xff); }

static int hex_byte(const char *h, unsigned char *out) {
  unsigned v;
  if (sscanf(h, "%2x", &v) != 1) return 0;
  *out = (unsigned char)v;
  return 1;
}

/* The measurement record: one DMTF block (48-byte digest) per comma-separated hex value. */
static int emit_record(struct out *o, const char *list, unsigned *count) {
  const char *p = list;
  *count = 0;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0 || n % 2 != 0 || n / 2 > 64) return 0;
    emit_u8(o, *count + 1); emit_u8(o, 1); emit_u16(o, (unsigned)(3 + n / 2));
    emit_u8(o, 1); emit_u16(o, (unsigned)(n / 2));
    for (size_t i = 0; i < n; i += 2) {
      unsigned char b;
      if (!hex_byte(p + i, &b)) return 0;
      emit_u8(o, b);
    }
    (*count)++;
    p = end ? end + 1 : p + n;
  }
  return 1;
}

/* VBIOS "96.00.9F.00.01" as GPUs send it: a u32 LE reading 96009f00, the OEM byte, 3 zeros. */
static void emit_vbios_field(struct out *o, const char *vbios) {
  unsigned a, b, c, d, e;
  unsigned char v[8] = { 0 };
  if (sscanf(vbios, "%2x.%2x.%2x.%2x.%2x", &a, &b, &c, &d, &e) != 5) return;
  v[0] = (unsigned char)d; v[1] = (unsigned char)c; v[2] = (unsigned char)b; v[3] = (unsigned char)a; v[4] = (unsigned char)e;
  emit_u16(o, 6); emit_u16(o, 8); emit(o, v, 8);
}

/* ECDSA P-384 over SHA-384 of msg with the key in `path`, as r || s (48 bytes each). */
static int sign_p384(const char *path, const unsigned char *msg, size_t len, unsigned char sig[96]) {
  FILE *f = fopen(path, "r");
  EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char der[128];
  size_t der_len = sizeof der;
  int ok = 0;
  if (f) fclose(f);
  if (key && ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key) == 1 &&
      EVP_DigestSign(ctx, der, &der_len, msg, len) == 1) {
    const unsigned char *q = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
    if (s) {
      ok = BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 48) == 48 && BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 48, 48) == 48;
      ECDSA_SIG_free(s);
    }
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

static nvmlReturn_t spdm_report(struct fake_gpu *d, const unsigned char nonce[0x20], unsigned char *buf, size_t cap, unsigned int *size) {
  static const unsigned char responder_nonce[0x20] = { 0x5a };
  unsigned char record[MEASUREMENTS_HEX], opaque[512], sig[96];
  struct out rec = { record, 0, sizeof record, 0 }, opq = { opaque, 0, sizeof opaque, 0 }, o = { buf, 0, cap, 0 };
  unsigned count;
  if (!emit_record(&rec, d->measurements, &count) || rec.overflow || count > 255) return INVALID_ARGUMENT;
  emit_u16(&opq, 3); emit_u16(&opq, (unsigned)strlen(cfg.driver) + 1); emit(&opq, cfg.driver, strlen(cfg.driver) + 1);
  emit_vbios_field(&opq, d->report_vbios[0] ? d->report_vbios : d->vbios);
  if (opq.overflow) return INVALID_ARGUMENT;
  emit_u8(&o, 0x11); emit_u8(&o, 0xe0); emit_u8(&o, 0x01); emit_u8(&o, 0xff); emit(&o, nonce, 0x20); emit_u8(&o, 0);
  emit_u8(&o, 0x11); emit_u8(&o, 0x60); emit_u8(&o, 0); emit_u8(&o, 0); emit_u8(&o, count);
  emit_u8(&o, rec.len & 0xff); emit_u8(&o, (rec.len >> 8) & 0xff); emit_u8(&o, (rec.len >> 16) & 0xff);
  emit(&o, record, rec.len); emit(&o, responder_nonce, sizeof responder_nonce);
  emit_u16(&o, (unsigned)opq.len); emit(&o, opaque, opq.len);
  if (o.overflow || !sign_p384(d->key, buf, o.len, sig)) return INVALID_ARGUMENT;
  emit(&o, sig, sizeof sig);
  for (long i = 0; i < d->trailing && i < 64; i++) emit_u8(&o, 0);
  if (o.overflow) return INVALID_ARGUMENT;
  *size = (unsigned int)o.len;
  return OK;
}

/* Signed SPDM with an attestation key; else a synthetic tag, the caller's nonce, the UUID. */
nvmlReturn_t nvmlDeviceGetConfComputeGpuAttestationReport(nvmlDevice_t d, nvmlConfComputeGpuAttestationReport_t *r) {
  static const char tag[] = "FAKE-GPU-REPORT:";
  ENTER(__func__);
  if (!valid(d) || !r) return INVALID_ARGUMENT;
  if (!cfg.cc_supported || cfg.cc_feature != 1) return NOT_SUPPORTED;
  r->isCecAttestationReportPresent = 0;
  r->cecAttestationReportSize = 0;
  if (d->key[0]) return spdm_report(d, r->nonce, r->attestationReport, sizeof r->attestationReport, &r->attestationReportSize);
  size_t u = strlen(d->uuid), t = sizeof tag - 1;
  memcpy(r->attestationReport, tag, t);
  memcpy(r->attestationReport + t, r->nonce, sizeof r->nonce);
  memcpy(r->attestationReport + t + sizeof r->nonce, d->uuid, u);
  r->attestationReportSize = (unsigned int)(t + sizeof r->nonce + u);
  return OK;
}

/* The file at `path` into buf (at most cap bytes); its length, or -1. */
static long read_file(const char *path, unsigned char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap, f);
  int more = fgetc(f) != EOF;
  fclose(f);
  return more ? -1 : (long)n;
}

nvmlReturn_t nvmlDeviceGetConfComputeGpuCertificate(nvmlDevice_t d, nvmlConfComputeGpuCertificate_t *c) {
  ENTER(__func__);
  if (!valid(d) || !c) return INVALID_ARGUMENT;
  if (!cfg.cc_supported || cfg.cc_feature != 1) return NOT_SUPPORTED;
  int a = snprintf((char *)c->certChain, sizeof c->certChain, "FAKE DEVICE CERT %s\n", d->uuid);
  int b = d->chain[0]
    ? (int)read_file(d->chain, c->attestationCertChain, sizeof c->attestationCertChain)
    : snprintf((char *)c->attestationCertChain, sizeof c->attestationCertChain, "FAKE ATTESTATION CERT %s\n", d->uuid);
  if (b < 0) return INVALID_ARGUMENT;
  c->certChainSize = a > 0 ? (unsigned int)a : 0;
  c->attestationCertChainSize = b > 0 ? (unsigned int)b : 0;
  return OK;
}
