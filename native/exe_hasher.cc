// Hashing of callers' executables on the addon's own threads. Identifying a caller means
// hashing a file the caller picked, as large as the bound the daemon sets; on libuv's thread
// pool that work would queue ahead of the audit log's writes and fdatasync calls, so one
// hostile client could hold up a durable record or an epoch. These threads belong to the
// addon alone and hand each result back through one thread-safe function per environment,
// which settles the Promise on the main thread; no JS value is touched off it.
//
// The caller's descriptor is duplicated on the main thread before the call returns: the
// caller may close its copy at once, and the bytes hashed are those of the file it opened,
// never those of whatever a path names by the time a thread gets to it.
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "file_digest.h"

namespace attestd {
namespace {

// Two threads: one huge executable does not hold up the identification of every other new
// caller, and a flood of new executables costs at most two cores.
constexpr int kThreads = 2;
// Sizes cross the boundary as doubles; beyond 2^53 they are no longer exact.
constexpr double kMaxExactDouble = 9007199254740992.0;

}  // namespace

struct ExeHashJob {
  ExeHashJob(Napi::Env env, int fd, const EVP_MD* md, uint64_t maxBytes)
      : deferred(Napi::Promise::Deferred::New(env)), fd(fd), md(md), maxBytes(maxBytes) {}
  ~ExeHashJob() { close(fd); }
  ExeHashJob(const ExeHashJob&) = delete;
  ExeHashJob& operator=(const ExeHashJob&) = delete;

  Napi::Promise::Deferred deferred;
  const int fd;  // owned: a duplicate made for this job
  const EVP_MD* const md;
  const uint64_t maxBytes;
  FileDigest result;
};

class ExeHasher;
void DeliverDigest(Napi::Env env, Napi::Function unused, ExeHasher* hasher, ExeHashJob* job);
using DigestCallback = Napi::TypedThreadSafeFunction<ExeHasher, ExeHashJob, DeliverDigest>;

class ExeHasher {
 public:
  // This environment's hasher, started on first use; nullptr with an error thrown if no
  // thread could be started.
  static ExeHasher* Of(Napi::Env env) {
    AddonData* data = env.GetInstanceData<AddonData>();
    if (data->exeHasher != nullptr) return data->exeHasher;
    ExeHasher* hasher = new ExeHasher();
    std::string error;
    if (!hasher->StartThreads(&error)) {
      delete hasher;
      ThrowError(env, "INTERNAL", "no hashing thread could be started: " + error);
      return nullptr;
    }
    // The threads only wait until the first Submit, which happens after this assignment
    // under the queue's mutex, so they never see tsfn_ unset.
    hasher->tsfn_ = DigestCallback::New(env, "attestd.hashExecutable", 0, 1, hasher, Finalize,
                                        static_cast<void*>(nullptr));
    if (env.IsExceptionPending()) {
      delete hasher;
      return nullptr;
    }
    // An idle hasher does not keep the process alive; Submit takes a reference per job.
    hasher->tsfn_.Unref(env);
    data->exeHasher = hasher;
    return hasher;
  }

  // Main thread. Takes ownership of the job.
  void Submit(Napi::Env env, ExeHashJob* job) {
    if (pending_++ == 0) tsfn_.Ref(env);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(job);
    }
    wake_.notify_one();
  }

  // Main thread, once a job's Promise is settled.
  void Settled(Napi::Env env) {
    if (--pending_ == 0) tsfn_.Unref(env);
  }

  ~ExeHasher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cancel_.store(true);
    wake_.notify_all();
    for (pthread_t thread : threads_) pthread_join(thread, nullptr);
    for (ExeHashJob* job : queue_) delete job;
  }

 private:
  ExeHasher() = default;

  bool StartThreads(std::string* error) {
    for (int i = 0; i < kThreads; i++) {
      pthread_t thread;
      int rc = pthread_create(&thread, nullptr, &ExeHasher::ThreadMain, this);
      if (rc != 0) {
        *error = "pthread_create: " + DescribeErrno(rc);
        break;
      }
      threads_.push_back(thread);
    }
    return !threads_.empty();
  }

  static void* ThreadMain(void* self) {
    static_cast<ExeHasher*>(self)->Run();
    return nullptr;
  }

  void Run() {
    for (;;) {
      ExeHashJob* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = queue_.front();
        queue_.pop_front();
      }
      job->result = DigestFile(job->fd, job->md, job->maxBytes, &cancel_);
      // Fails only while the environment is being torn down; nobody waits for the result.
      if (tsfn_.NonBlockingCall(job) != napi_ok) delete job;
    }
  }

  // Runs on the main thread when the environment is torn down: is_closing is set by then,
  // so no thread can reach the thread-safe function after the joins below.
  static void Finalize(Napi::Env, void*, ExeHasher* hasher) { delete hasher; }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<ExeHashJob*> queue_;  // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::atomic<bool> cancel_{false};
  std::vector<pthread_t> threads_;
  DigestCallback tsfn_;
  size_t pending_ = 0;  // main thread only
};

namespace {

// Main thread. The digest and the version of the file it is of, in the field names and
// units of node:fs BigIntStats, so the caller can compare them with its own fstat.
Napi::Object DigestObject(Napi::Env env, const FileDigest& r) {
  const struct stat& v = r.version;
  auto ns = [](const struct timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; };
  Napi::Object out = Napi::Object::New(env);
  out.Set("digest", Napi::Buffer<uint8_t>::Copy(env, r.digest, r.length));
  out.Set("dev", Napi::BigInt::New(env, static_cast<uint64_t>(v.st_dev)));
  out.Set("ino", Napi::BigInt::New(env, static_cast<uint64_t>(v.st_ino)));
  out.Set("size", Napi::BigInt::New(env, static_cast<int64_t>(v.st_size)));
  out.Set("mtimeNs", Napi::BigInt::New(env, ns(v.st_mtim)));
  out.Set("ctimeNs", Napi::BigInt::New(env, ns(v.st_ctim)));
  return out;
}

}  // namespace

// Main thread. A null env means the environment was torn down with this job still queued:
// the hasher is gone already, and only the job's own resources are left to free.
void DeliverDigest(Napi::Env env, Napi::Function, ExeHasher* hasher, ExeHashJob* job) {
  if (env == nullptr) {
    delete job;
    return;
  }
  const FileDigest& r = job->result;
  switch (r.status) {
    case FileDigest::Status::kOk:
      job->deferred.Resolve(DigestObject(env, r));
      break;
    case FileDigest::Status::kTooLarge:
      job->deferred.Reject(MakeError(env, "EXE_TOO_LARGE", "executable: " + r.message));
      break;
    case FileDigest::Status::kCancelled:
      job->deferred.Reject(MakeError(env, "INTERNAL", "executable: " + r.message));
      break;
    case FileDigest::Status::kFailed:
      job->deferred.Reject(MakeError(env, r.code, "executable: " + r.message));
      break;
  }
  hasher->Settled(env);
  delete job;
}

namespace {

// hashExecutable(fd, algorithm, maxBytes): Promise<{digest, dev, ino, size, mtimeNs, ctimeNs}>.
Napi::Value HashExecutable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!GetNonNegativeInt(info, 0, &fd)) return env.Undefined();
  const EVP_MD* md = GetDigest(info, 1);
  if (md == nullptr) return env.Undefined();
  double max = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  if (!std::isfinite(max) || max < 0 || max > kMaxExactDouble || std::floor(max) != max) {
    ThrowError(env, "INVALID_ARGUMENT", "maxBytes must be an integer in [0, 2^53]");
    return env.Undefined();
  }
  ExeHasher* hasher = ExeHasher::Of(env);
  if (hasher == nullptr) return env.Undefined();
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    ThrowError(env, "NATIVE_IO_FAILED", "dup(" + std::to_string(fd) + "): " + DescribeErrno(errno));
    return env.Undefined();
  }
  ExeHashJob* job = new ExeHashJob(env, copy, md, static_cast<uint64_t>(max));
  Napi::Promise promise = job->deferred.Promise();
  hasher->Submit(env, job);
  return promise;
}

}  // namespace

void InitExeHasher(Napi::Env env, Napi::Object exports) {
  exports.Set("hashExecutable", Napi::Function::New(env, HashExecutable, "hashExecutable"));
}

}  // namespace attestd
