#include "sluice/ingest/shard_writer.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "progress.h"
#include "shard_sidecar.h"
#include "splitmix64.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/index.h"
#include "sluice/formats/record_format.h"
#include "sluice/formats/record_writer.h"
#include "sluice/formats/sha256.h"

namespace sluice::ingest {
namespace {

namespace fs = std::filesystem;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Keeps an earlier run's shard when its sidecar was made by the same plan and the file still hashes to
// what the sidecar says.
bool TryResume(const std::string& out_dir, const std::string& file, const std::string& digest,
               ShardResult* result) {
  auto sidecar = ShardSidecar::Read(out_dir, file);
  if (!sidecar.ok() || sidecar->plan_digest != digest) return false;
  auto bytes = formats::ReadFile((fs::path(out_dir) / file).string());
  if (!bytes.ok() || bytes->size() != sidecar->result.bytes ||
      formats::Sha256Hex(*bytes) != sidecar->result.sha256) {
    return false;
  }
  *result = std::move(sidecar->result);
  result->file = file;
  result->resumed = true;
  return true;
}

struct ShardJob {
  SplitSpec* split = nullptr;
  int index = 0;
  std::vector<size_t> positions;  // into split->samples, in output order
  std::string file;
  std::string digest;
  ShardResult* result = nullptr;
};

// Shared state of one run: the first fatal error stops everybody.
class RunState {
 public:
  explicit RunState(int64_t max_bad) : max_bad_(max_bad) {}
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void Fail(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = std::move(s);
    failed_ = true;
  }
  // Counts a bad sample; false once the budget is exceeded (and the run is failed).
  bool CountBad(const Reject& r) {
    int64_t n = ++bad_;
    if (n <= 5) {
      std::fprintf(stderr, "ingest: skipping %s:%s: %s\n", r.source.c_str(), r.member.c_str(),
                   r.reason.c_str());
    }
    if (n > max_bad_) {
      Fail(Status::DataLoss("more than --max-bad " + std::to_string(max_bad_) +
                            " bad images (the last: " + r.source + ":" + r.member + ": " + r.reason +
                            ")"));
      return false;
    }
    return true;
  }
  Status error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  int64_t max_bad_;
  std::atomic<int64_t> bad_{0};
  std::atomic<bool> failed_{false};
  std::mutex mu_;
  Status error_;
};

// Writes one shard. `fetch(member)` gives the member's bytes.
Status WriteShard(const ShardJob& job, const WriterOptions& options, RunState* state,
                  Progress* progress, bool prefetch_hints,
                  const std::function<Result<std::string>(size_t member)>& fetch) {
  SplitSpec& split = *job.split;
  ShardResult& r = *job.result;
  r.file = job.file;
  const std::string path = (fs::path(options.out_dir) / job.file).string();
  SLUICE_ASSIGN_OR_RETURN(formats::AtomicFile out, formats::AtomicFile::Create(path));
  formats::Sha256 sha;
  std::vector<formats::IndexEntry> index;
  // Keep kPrefetch members of this shard requested ahead of the one being read.
  constexpr size_t kPrefetch = 32;
  auto prefetch = [&](size_t i) {
    if (prefetch_hints && i < job.positions.size()) {
      split.source->Prefetch((*split.members)[split.samples[job.positions[i]].member]);
    }
  };
  for (size_t i = 0; i < kPrefetch; ++i) prefetch(i);
  for (size_t i = 0; i < job.positions.size(); ++i) {
    const size_t pos = job.positions[i];
    prefetch(i + kPrefetch);
    if (state->failed()) return Status::Ok();  // someone else failed; abandon quietly
    const Sample& sample = split.samples[pos];
    const Member& member = (*split.members)[sample.member];
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, fetch(sample.member));
    r.input_bytes += bytes.size();
    const uint64_t in_bytes = bytes.size();
    auto built = split.build(sample, std::move(bytes));
    progress->Add(1, in_bytes);
    if (!built.ok()) {
      Reject reject{split.source->path(),
                    member.container.empty() ? member.path : member.container + "/" + member.path,
                    built.status().message()};
      r.rejects.push_back(reject);
      if (!state->CountBad(reject)) return Status::Ok();
      continue;
    }
    // Frame in place: the Example goes to the file buffer once, between its header and footer.
    char header[formats::kRecordHeaderSize], footer[formats::kRecordFooterSize];
    const std::string& data = built->example;
    formats::EncodeRecordFrame(data, header, footer);
    index.push_back({out.bytes_written(), formats::FramedSize(data.size())});
    for (std::string_view piece : {std::string_view(header, sizeof(header)), std::string_view(data),
                                   std::string_view(footer, sizeof(footer))}) {
      sha.Update(piece);
      SLUICE_RETURN_IF_ERROR(out.Append(piece));
    }
    ++r.records;
    if (built->reencoded) ++r.reencoded;
    ++r.labels[sample.label];
  }
  if (state->failed()) return Status::Ok();
  r.bytes = out.bytes_written();
  r.sha256 = sha.HexDigest();
  SLUICE_RETURN_IF_ERROR(out.Commit(/*sync=*/true));
  if (options.write_index) SLUICE_RETURN_IF_ERROR(formats::WriteIndexFile(path + ".idx", index));
  return ShardSidecar{r, job.digest}.Write(options.out_dir);
}

}  // namespace

std::string ShardFileName(const std::string& pattern, int index, int num_shards) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), pattern.c_str(), index, num_shards);
  return buf;
}

std::vector<std::vector<size_t>> PlanShards(size_t num_samples, int num_shards, uint64_t seed) {
  std::vector<size_t> perm(num_samples);
  for (size_t i = 0; i < num_samples; ++i) perm[i] = i;
  SplitMix64 rng(seed);
  for (size_t i = num_samples; i > 1; --i) std::swap(perm[i - 1], perm[rng.Below(i)]);
  std::vector<std::vector<size_t>> shards(static_cast<size_t>(std::max(num_shards, 1)));
  const size_t s = shards.size();
  for (size_t k = 0; k < s; ++k) {
    const size_t begin = k * num_samples / s, end = (k + 1) * num_samples / s;
    shards[k].assign(perm.begin() + begin, perm.begin() + end);
  }
  return shards;
}

Status WriteSplits(std::vector<SplitSpec>& splits, const WriterOptions& options,
                   std::map<std::string, std::vector<ShardResult>>* results) {
  if (options.num_tasks < 1 || options.task_index < 0 || options.task_index >= options.num_tasks) {
    return Status::InvalidArgument("task index " + std::to_string(options.task_index) +
                                   " is not in [0, " + std::to_string(options.num_tasks) + ")");
  }
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories((fs::path(options.out_dir) / ".sluice").string()));

  // Plan every split; keep this task's shards.
  std::vector<ShardJob> jobs;
  for (SplitSpec& split : splits) {
    if (split.num_shards < 1) return Status::InvalidArgument(split.name + ": shards must be >= 1");
    auto plan = PlanShards(split.samples.size(), split.num_shards, options.seed ^ Fnv1a(split.name));
    (*results)[split.name].clear();
    for (int i = 0; i < split.num_shards; ++i) {
      if (i % options.num_tasks != options.task_index) continue;
      ShardJob job;
      job.split = &split;
      job.index = i;
      job.positions = std::move(plan[i]);
      job.file = ShardFileName(split.file_pattern, i, split.num_shards);
      formats::Sha256 digest;
      digest.Update(options.options_fingerprint);
      digest.Update(split.name + "\n" + job.file + "\n");
      for (size_t pos : job.positions) {
        const Sample& s = split.samples[pos];
        const Member& m = (*split.members)[s.member];
        digest.Update(m.Display(split.source->path()) + "|" + std::to_string(m.size) + "|" +
                      std::to_string(s.label) + "|" + std::to_string(s.tag) + "\n");
      }
      job.digest = digest.HexDigest();
      jobs.push_back(std::move(job));
    }
  }
  // Results live in *results, one per job, in shard order per split.
  for (ShardJob& job : jobs) (*results)[job.split->name].emplace_back();
  {
    std::map<std::string, size_t> next;
    for (ShardJob& job : jobs) job.result = &(*results)[job.split->name][next[job.split->name]++];
  }

  // Resume: keep verified shards.
  std::vector<ShardJob*> todo;
  uint64_t todo_items = 0, todo_bytes = 0;
  for (ShardJob& job : jobs) {
    if (options.resume && TryResume(options.out_dir, job.file, job.digest, job.result)) continue;
    todo.push_back(&job);
    todo_items += job.positions.size();
    for (size_t pos : job.positions) todo_bytes += (*job.split->members)[job.split->samples[pos].member].size;
  }
  if (todo.size() < jobs.size()) {
    std::fprintf(stderr, "ingest: resuming: %zu of %zu shards already complete and verified\n",
                 jobs.size() - todo.size(), jobs.size());
  }

  RunState state(options.max_bad);
  Progress progress("ingest", todo_items, todo_bytes);
  const int threads = options.threads > 0 ? options.threads : tbb::this_task_arena::max_concurrency();
  tbb::task_arena arena(threads);

  // Shards run in parallel, one task each: shards are independent, and a shard's bytes depend only on
  // the plan, so the thread count cannot change the output.
  auto run_jobs = [&](const std::vector<ShardJob*>& batch, bool prefetch_hints,
                      const std::function<Result<std::string>(const ShardJob&, size_t)>& fetch) {
    arena.execute([&] {
      tbb::parallel_for(size_t{0}, batch.size(), [&](size_t i) {
        const ShardJob& job = *batch[i];
        Status s = WriteShard(job, options, &state, &progress, prefetch_hints,
                              [&](size_t member) { return fetch(job, member); });
        if (!s.ok()) state.Fail(s);
      });
    });
  };

  // Group jobs by split (each split has one source).
  for (SplitSpec& split : splits) {
    std::vector<ShardJob*> mine;
    for (ShardJob* j : todo) {
      if (j->split == &split) mine.push_back(j);
    }
    if (mine.empty() || state.failed()) continue;
    if (split.source->random_access()) {
      run_jobs(mine, /*prefetch_hints=*/true, [&](const ShardJob&, size_t member) {
        return split.source->Read((*split.members)[member]);
      });
      continue;
    }
    // Streaming source: batches of shards whose input fits the memory budget, one pass each.
    size_t start = 0;
    while (start < mine.size() && !state.failed()) {
      size_t end = start;
      uint64_t bytes = 0;
      std::vector<bool> wanted(split.members->size(), false);
      while (end < mine.size()) {
        uint64_t shard_bytes = 0;
        for (size_t pos : mine[end]->positions) {
          shard_bytes += (*split.members)[split.samples[pos].member].size;
        }
        if (end > start && bytes + shard_bytes > options.memory_budget) break;
        bytes += shard_bytes;
        for (size_t pos : mine[end]->positions) wanted[split.samples[pos].member] = true;
        ++end;
      }
      std::unordered_map<size_t, std::string> buffered;
      Status s = split.source->Stream(wanted, [&](size_t ordinal, std::string&& data) {
        buffered.emplace(ordinal, std::move(data));
        return Status::Ok();
      });
      if (!s.ok()) {
        state.Fail(s);
        break;
      }
      std::vector<ShardJob*> batch(mine.begin() + start, mine.begin() + end);
      std::mutex mu;
      run_jobs(batch, /*prefetch_hints=*/false, [&](const ShardJob&, size_t member) -> Result<std::string> {
        std::lock_guard<std::mutex> lock(mu);
        auto it = buffered.find(member);
        if (it == buffered.end()) {
          return Status::DataLoss(split.source->path() + ": member " +
                                  (*split.members)[member].path + " vanished on the second pass");
        }
        std::string data = std::move(it->second);
        buffered.erase(it);
        return data;
      });
      start = end;
    }
  }
  progress.Finish();
  return state.error();
}

}  // namespace sluice::ingest
