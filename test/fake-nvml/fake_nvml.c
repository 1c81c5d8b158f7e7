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
 * '#' starts a comment line; unknown keys, malformed and over-long lines are ignored, and
 * values are truncated to their buffers. A missing or unreadable file makes nvmlInit_v2
 * return NVML_ERROR_DRIVER_NOT_LOADED.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct fake_gpu *nvmlDevice_t;

enum {
  OK = 0, UNINITIALIZED = 1, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3,
  INSUFFICIENT_SIZE = 7, DRIVER_NOT_LOADED = 9,
};

#define MAX_GPUS 16
#define MAX_FAILS 16
#define STR 96

struct fake_gpu {
  char name[STR], uuid[STR], serial[STR], pci_bus_id[32], vbios[STR], inforom[STR];
  long ecc, mig, persistence;
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
  char line[1024];
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

/* A synthetic report: a tag, the caller's nonce, then the GPU's UUID. Not an SPDM message. */
nvmlReturn_t nvmlDeviceGetConfComputeGpuAttestationReport(nvmlDevice_t d, nvmlConfComputeGpuAttestationReport_t *r) {
  static const char tag[] = "FAKE-GPU-REPORT:";
  ENTER(__func__);
  if (!valid(d) || !r) return INVALID_ARGUMENT;
  if (!cfg.cc_supported || cfg.cc_feature != 1) return NOT_SUPPORTED;
  size_t u = strlen(d->uuid), t = sizeof tag - 1;
  memcpy(r->attestationReport, tag, t);
  memcpy(r->attestationReport + t, r->nonce, sizeof r->nonce);
  memcpy(r->attestationReport + t + sizeof r->nonce, d->uuid, u);
  r->attestationReportSize = (unsigned int)(t + sizeof r->nonce + u);
  r->isCecAttestationReportPresent = 0;
  r->cecAttestationReportSize = 0;
  return OK;
}

nvmlReturn_t nvmlDeviceGetConfComputeGpuCertificate(nvmlDevice_t d, nvmlConfComputeGpuCertificate_t *c) {
  ENTER(__func__);
  if (!valid(d) || !c) return INVALID_ARGUMENT;
  if (!cfg.cc_supported || cfg.cc_feature != 1) return NOT_SUPPORTED;
  int a = snprintf((char *)c->certChain, sizeof c->certChain, "FAKE DEVICE CERT %s\n", d->uuid);
  int b = snprintf((char *)c->attestationCertChain, sizeof c->attestationCertChain, "FAKE ATTESTATION CERT %s\n", d->uuid);
  c->certChainSize = a > 0 ? (unsigned int)a : 0;
  c->attestationCertChainSize = b > 0 ? (unsigned int)b : 0;
  return OK;
}
