// Confidential-VM reports through the legacy guest devices, for kernels without configfs-tsm:
// /dev/sev-guest SNP_GET_REPORT / SNP_GET_EXT_REPORT and /dev/tdx_guest TDX_CMD_GET_REPORT0.
// Blocking ioctls run on a worker thread; the 64 bytes of report data are copied in, the raw
// response copied out. Parsing and every check stay in TypeScript.
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace attestd {
namespace {

// linux/tdx-guest.h is not in every distribution's headers; the ABI is fixed.
struct TdxReportReq {
  uint8_t reportdata[64];
  uint8_t tdreport[1024];
};
constexpr unsigned long kTdxCmdGetReport0 = _IOWR('T', 1, TdxReportReq);

// MSG_REPORT_RSP: status (4), report size (4), reserved (24), then the report.
constexpr size_t kSnpReportOffset = 32;
constexpr size_t kSnpReportSize = 1184;
constexpr uint32_t kSnpCertsMax = 64 * 1024;

enum class Kind { kSnp, kSnpExt, kTdx };

class ReportWorker : public Napi::AsyncWorker {
 public:
  ReportWorker(Napi::Env env, Kind kind, std::string device, const uint8_t* data)
      : Napi::AsyncWorker(env), kind_(kind), device_(std::move(device)), deferred_(Napi::Promise::Deferred::New(env)) {
    std::memcpy(reportData_, data, sizeof(reportData_));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    int fd = open(device_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      fail("CVM_UNAVAILABLE", "cannot open " + device_ + ": " + DescribeErrno(errno));
      return;
    }
    if (kind_ == Kind::kTdx) {
      TdxReportReq req{};
      std::memcpy(req.reportdata, reportData_, sizeof(reportData_));
      if (ioctl(fd, kTdxCmdGetReport0, &req) != 0) fail("CVM_UNAVAILABLE", "TDX_CMD_GET_REPORT0: " + DescribeErrno(errno));
      else report_.assign(req.tdreport, req.tdreport + sizeof(req.tdreport));
    } else {
      snp_report_resp resp{};
      snp_guest_request_ioctl io{};
      io.msg_version = 1;
      io.resp_data = reinterpret_cast<uint64_t>(&resp);
      int rc;
      if (kind_ == Kind::kSnp) {
        snp_report_req req{};
        std::memcpy(req.user_data, reportData_, sizeof(reportData_));
        io.req_data = reinterpret_cast<uint64_t>(&req);
        rc = ioctl(fd, SNP_GET_REPORT, &io);
      } else {
        certs_.resize(kSnpCertsMax);
        snp_ext_report_req req{};
        std::memcpy(req.data.user_data, reportData_, sizeof(reportData_));
        req.certs_address = reinterpret_cast<uint64_t>(certs_.data());
        req.certs_len = kSnpCertsMax;
        io.req_data = reinterpret_cast<uint64_t>(&req);
        rc = ioctl(fd, SNP_GET_EXT_REPORT, &io);
      }
      if (rc != 0) {
        fail("CVM_UNAVAILABLE", "SNP report ioctl: " + DescribeErrno(errno) + " (firmware error " +
                                    std::to_string(io.exitinfo2 & 0xffffffffu) + ")");
      } else {
        uint32_t status, size;
        std::memcpy(&status, resp.data, 4);
        std::memcpy(&size, resp.data + 4, 4);
        if (status != 0 || size != kSnpReportSize) {
          fail("CVM_REPORT_MALFORMED", "SNP report response status " + std::to_string(status) + ", size " + std::to_string(size));
        } else {
          report_.assign(resp.data + kSnpReportOffset, resp.data + kSnpReportOffset + kSnpReportSize);
        }
      }
    }
    close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!code_.empty()) {
      deferred_.Reject(MakeError(env, code_.c_str(), message_));
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("report", Napi::Buffer<uint8_t>::Copy(env, report_.data(), report_.size()));
    if (kind_ == Kind::kSnpExt) out.Set("certs", Napi::Buffer<uint8_t>::Copy(env, certs_.data(), certs_.size()));
    deferred_.Resolve(out);
  }

 private:
  void fail(const char* code, std::string message) {
    code_ = code;
    message_ = std::move(message);
  }

  Kind kind_;
  std::string device_;
  uint8_t reportData_[64];
  std::vector<uint8_t> report_;
  std::vector<uint8_t> certs_;
  std::string code_;
  std::string message_;
  Napi::Promise::Deferred deferred_;
};

// cvmReport(kind: 'snp' | 'snp-ext' | 'tdx', device: string, reportData: Buffer(64)): Promise<{report, certs?}>
Napi::Value CvmReport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString()) {
    ThrowError(env, "INVALID_ARGUMENT", "cvmReport(kind, device, reportData)");
    return env.Undefined();
  }
  std::string k = info[0].As<Napi::String>().Utf8Value();
  Kind kind;
  if (k == "snp") kind = Kind::kSnp;
  else if (k == "snp-ext") kind = Kind::kSnpExt;
  else if (k == "tdx") kind = Kind::kTdx;
  else {
    ThrowError(env, "INVALID_ARGUMENT", "kind must be snp, snp-ext or tdx");
    return env.Undefined();
  }
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (!GetBytes(info, 2, &data, &length)) return env.Undefined();
  if (length != 64) {
    ThrowError(env, "INVALID_ARGUMENT", "report data must be 64 bytes");
    return env.Undefined();
  }
  auto* worker = new ReportWorker(env, kind, info[1].As<Napi::String>().Utf8Value(), data);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitCvm(Napi::Env env, Napi::Object exports) {
  exports.Set("cvmReport", Napi::Function::New(env, CvmReport, "cvmReport"));
}

}  // namespace attestd
