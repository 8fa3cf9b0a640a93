#include "sluice/train/lottery.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sluice/formats/file_util.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/trainer.h"

namespace sluice::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kWeightRewind = "weight-rewind";
constexpr const char* kLrRewind = "lr-rewind";
constexpr const char* kFinetune = "finetune";

// "80", "51.2", "21".
std::string Pct(double d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", d);
  return buf;
}

struct Run {
  LotteryRow row;
  TrainConfig config;
};

std::string Path(const LotteryConfig& c, const std::string& rel) { return c.out_dir + "/" + rel; }

// Best top-1 over the evaluations in DIR/metrics.jsonl (a resumed run may list a step twice).
void ReadBest(const std::string& dir, LotteryRow* row) {
  auto text = formats::ReadFile(dir + "/metrics.jsonl");
  if (!text.ok()) return;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("kind", "") != "eval") continue;
    const double top1 = j.value("top_1_accuracy", 0.0);
    if (top1 > row->best_top1) {
      row->best_top1 = top1;
      row->best_step = j.value("step", int64_t{0});
    }
  }
}

json RowJson(const LotteryRow& r) {
  return {{"mode", r.mode},
          {"density", r.density},
          {"level", r.level},
          {"measured_density", r.measured_density},
          {"start_step", r.start_step},
          {"end_step", r.end_step},
          {"steps", r.end_step - r.start_step},
          {"final_top1", r.final_top1},
          {"final_top5", r.final_top5},
          {"best_top1", r.best_top1},
          {"best_step", r.best_step},
          {"dir", r.dir}};
}

Result<LotteryRow> RowFromJson(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(path));
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::DataLoss(path + ": not a JSON object (delete it to redo the run)");
  LotteryRow r;
  try {
    r.mode = j.at("mode");
    r.density = j.at("density");
    r.level = j.at("level");
    r.measured_density = j.at("measured_density");
    r.start_step = j.at("start_step");
    r.end_step = j.at("end_step");
    r.final_top1 = j.at("final_top1");
    r.final_top5 = j.at("final_top5");
    r.best_top1 = j.at("best_top1");
    r.best_step = j.at("best_step");
    r.dir = j.at("dir");
  } catch (const json::exception& e) {
    return Status::DataLoss(path + ": " + e.what() + " (delete it to redo the run)");
  }
  return r;
}

// The `sluice train` command that makes the same run by hand.
std::string Command(const LotteryConfig& lc, const Run& run) {
  const TrainConfig& c = run.config;
  std::string s = "sluice train --recipe " + c.recipe + " --hparams " + Path(lc, "dense/hparams.yaml") +
                  " --data-dir " + c.data.dir + " --model-dir " + c.run.model_dir +
                  " --train-steps " + std::to_string(c.schedule.train_steps);
  if (!c.lottery.prune_method.empty()) s += " --prune-method " + c.lottery.prune_method + " --prune-at " + c.lottery.prune_at;
  if (!c.lottery.reset_to.empty()) s += " --reset-to " + c.lottery.reset_to;
  if (!c.lottery.reset_global_step_to.empty()) s += " --reset-global-step-to " + c.lottery.reset_global_step_to;
  if (c.schedule.force_learning_rate > 0) s += " --force-learning-rate " + Pct(c.schedule.force_learning_rate);
  std::string iters;
  for (int64_t i : c.run.checkpoint_iters) {
    if (!iters.empty()) iters += ',';
    iters += std::to_string(i);
  }
  if (!iters.empty()) s += " --checkpoint-iters " + iters;
  return s;
}

// Checkpoint steps in (from, to], multiples of `every`, plus `extra`.
std::vector<int64_t> CheckpointSteps(int64_t from, int64_t to, int64_t every, std::vector<int64_t> extra) {
  for (int64_t s = (from / every + 1) * every; s <= to; s += every) extra.push_back(s);
  std::sort(extra.begin(), extra.end());
  extra.erase(std::unique(extra.begin(), extra.end()), extra.end());
  return extra;
}

// Settings that decide the dense run; a resumed experiment must have the same.
json ExperimentJson(const LotteryConfig& c, int64_t dense_steps) {
  TrainConfig base = c.base;
  base.schedule.train_steps = dense_steps;
  return {{"hparams", HparamsToYaml(base)},
          {"data_dir", c.base.data.dir},
          {"rewind_iter", c.rewind_iter},
          {"iterative", c.iterative},
          {"scope", c.scope == PruneMethod::Scope::kGlobal ? "global" : "layerwise"},
          {"finetune_lr", c.finetune_lr},
          {"checkpoint_every", c.checkpoint_every}};
}

Status CheckOrWriteExperiment(const LotteryConfig& c, const json& now) {
  const std::string path = Path(c, "lottery.json");
  if (fs::exists(path)) {
    SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(path));
    const json was = json::parse(text, nullptr, false);
    if (was.is_discarded()) return Status::DataLoss(path + ": not JSON");
    for (const auto& [key, value] : now.items()) {
      if (!was.contains(key) || was[key] != value)
        return Status::InvalidArgument(
            c.out_dir + " holds an experiment made with other settings (" + key + ": was " +
            (was.contains(key) ? was[key].dump() : "absent") + ", now " + value.dump() +
            "); use another --out, or the same settings to resume it");
    }
    return Status::Ok();
  }
  return formats::WriteFileAtomically(path, now.dump(2) + "\n");
}

// Runs one training run unless result.json says it is complete; returns its row.
Result<LotteryRow> RunOne(const LotteryConfig& lc, Run run, int index, int count) {
  const std::string dir = run.config.run.model_dir;
  const std::string result_path = dir + "/result.json";
  if (fs::exists(result_path)) {
    SLUICE_ASSIGN_OR_RETURN(LotteryRow done, RowFromJson(result_path));
    std::fprintf(stderr, "lottery [%d/%d] %s: complete (final top-1 %.4f)\n", index, count,
                 run.row.dir.c_str(), done.final_top1);
    return done;
  }
  SLUICE_ASSIGN_OR_RETURN(auto existing, ListCheckpoints(dir));
  if (existing.empty()) {
    // Events and metrics of a run killed before its first checkpoint: start it over.
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return Status::IoError(dir + ": cannot remove the unfinished run: " + ec.message());
  }
  run.config.run.resume = !existing.empty();
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(dir));
  std::fprintf(stderr, "lottery [%d/%d] %s: %s%s, steps %lld -> %lld%s\n", index, count,
               run.row.dir.c_str(), run.row.mode.c_str(),
               run.row.mode == "dense" ? "" : (" to density " + Pct(run.row.density) + " %").c_str(),
               static_cast<long long>(run.row.start_step), static_cast<long long>(run.row.end_step),
               run.config.run.resume ? " (resuming)" : "");
  const json description = {{"mode", run.row.mode},
                            {"density", run.row.density},
                            {"level", run.row.level},
                            {"prune_method", run.config.lottery.prune_method},
                            {"prune_at", run.config.lottery.prune_at},
                            {"reset_to", run.config.lottery.reset_to},
                            {"reset_global_step_to", run.config.lottery.reset_global_step_to},
                            {"force_learning_rate", run.config.schedule.force_learning_rate},
                            {"start_step", run.row.start_step},
                            {"train_steps", run.config.schedule.train_steps},
                            {"command", Command(lc, run)}};
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(dir + "/lottery_run.json", description.dump(2) + "\n"));
  SLUICE_ASSIGN_OR_RETURN(TrainSummary summary, Train(run.config));
  LotteryRow row = run.row;
  row.final_top1 = summary.final_eval.top1;
  row.final_top5 = summary.final_eval.top5;
  row.end_step = summary.steps;
  SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata final_meta,
                          ReadCheckpointMetadata(summary.final_checkpoint));
  row.measured_density = final_meta.density;
  ReadBest(dir, &row);
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(result_path, RowJson(row).dump(2) + "\n"));
  return row;
}

std::string Xml(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string Svg(const LotteryConfig& c, const std::vector<LotteryRow>& rows) {
  constexpr double kW = 760, kH = 460, kLeft = 70, kRight = 180, kTop = 50, kBottom = 60;
  const double plot_w = kW - kLeft - kRight, plot_h = kH - kTop - kBottom;
  double dmin = 100, ymin = 1, ymax = 0;
  for (const LotteryRow& r : rows) {
    dmin = std::min(dmin, r.density);
    ymin = std::min(ymin, r.final_top1);
    ymax = std::max(ymax, r.final_top1);
  }
  // x: log density, 100 % at the left (as the papers plot it); y: top-1 with a margin, on a 0.02 grid.
  const double lx0 = std::log(100.0), lx1 = std::log(std::min(dmin * 0.85, 90.0));
  ymin = std::max(0.0, std::floor((ymin - 0.01) * 50) / 50);
  ymax = std::min(1.0, std::ceil((ymax + 0.01) * 50) / 50);
  if (ymax <= ymin) ymax = ymin + 0.02;
  auto X = [&](double d) { return kLeft + (std::log(d) - lx0) / (lx1 - lx0) * plot_w; };
  auto Y = [&](double a) { return kTop + (ymax - a) / (ymax - ymin) * plot_h; };
  char buf[512];
  std::string s;
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof(buf), fmt, args...);
    s += buf;
  };
  add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n", kW, kH, kW, kH);
  add("<rect width=\"%g\" height=\"%g\" fill=\"white\"/>\n", kW, kH);
  const std::string title = c.base.model.name + ": final top-1 vs density (" +
                            (c.iterative ? "iterative" : "one-shot") + " pruning, rewind to step " +
                            std::to_string(c.rewind_iter) + ")";
  add("<text x=\"%g\" y=\"24\" font-size=\"15\">%s</text>\n", kLeft, Xml(title).c_str());
  add("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#444\"/>\n", kLeft, kTop,
      plot_w, plot_h);
  const int yticks = static_cast<int>(std::lround((ymax - ymin) / 0.02));
  const int ystep = std::max(1, yticks / 8);
  for (int i = 0; i <= yticks; i += ystep) {
    const double a = ymin + 0.02 * i;
    add("<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", kLeft, Y(a), kLeft + plot_w, Y(a));
    add("<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", kLeft - 6, Y(a) + 4, a);
  }
  std::vector<double> xs = {100};
  for (const LotteryRow& r : rows) xs.push_back(r.density);
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (double d : xs) {
    add("<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>\n", X(d), kTop, X(d), kTop + plot_h);
    add("<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", X(d), kTop + plot_h + 18, Pct(d).c_str());
  }
  add("<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">percent of prunable weights remaining (log scale)</text>\n",
      kLeft + plot_w / 2, kH - 14);
  add("<text transform=\"translate(18 %g) rotate(-90)\" text-anchor=\"middle\">top-1 accuracy</text>\n",
      kTop + plot_h / 2);
  double legend_y = kTop + 10;
  auto legend = [&](const std::string& name, const char* color, bool dashed) {
    add("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", kLeft + plot_w + 14,
        legend_y, kLeft + plot_w + 40, legend_y, color, dashed ? " stroke-dasharray=\"6 4\"" : "");
    add("<text x=\"%g\" y=\"%g\">%s</text>\n", kLeft + plot_w + 46, legend_y + 4, Xml(name).c_str());
    legend_y += 20;
  };
  for (const LotteryRow& r : rows) {
    if (r.mode != "dense") continue;
    add("<line class=\"dense\" x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#555\" stroke-width=\"2\" "
        "stroke-dasharray=\"6 4\"/>\n", kLeft, Y(r.final_top1), kLeft + plot_w, Y(r.final_top1));
    legend("dense (" + Pct(100 * r.final_top1) + " %)", "#555", true);
  }
  const std::map<std::string, const char*> colors = {
      {kWeightRewind, "#1f77b4"}, {kLrRewind, "#d62728"}, {kFinetune, "#2ca02c"}};
  for (const std::string& mode : c.modes) {
    std::vector<const LotteryRow*> pts;
    for (const LotteryRow& r : rows)
      if (r.mode == mode) pts.push_back(&r);
    if (pts.empty()) continue;
    std::sort(pts.begin(), pts.end(), [](auto* a, auto* b) { return a->density > b->density; });
    const char* color = colors.count(mode) ? colors.at(mode) : "#000";
    std::string points;
    for (const LotteryRow* p : pts) {
      std::snprintf(buf, sizeof(buf), "%s%.1f,%.1f", points.empty() ? "" : " ", X(p->density), Y(p->final_top1));
      points += buf;
    }
    add("<polyline class=\"mode\" data-mode=\"%s\" points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
        Xml(mode).c_str(), points.c_str(), color);
    for (const LotteryRow* p : pts)
      add("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%s, density %s %%: top-1 %.4f</title></circle>\n",
          X(p->density), Y(p->final_top1), color, Xml(mode).c_str(), Pct(p->density).c_str(), p->final_top1);
    legend(mode, color, false);
  }
  s += "</svg>\n";
  return s;
}

}  // namespace

std::vector<std::string> LotteryModes() { return {kWeightRewind, kLrRewind, kFinetune}; }

Result<std::vector<LotteryRow>> RunLottery(const LotteryConfig& lc) {
  if (lc.out_dir.empty()) return Status::InvalidArgument("--out is required");
  if (lc.densities.empty()) return Status::InvalidArgument("--densities: at least one density");
  for (double d : lc.densities)
    if (!(d > 0 && d < 100))
      return Status::InvalidArgument("--densities: " + Pct(d) + " is not a percentage in (0, 100)");
  if (lc.iterative)
    for (size_t i = 1; i < lc.densities.size(); ++i)
      if (lc.densities[i] >= lc.densities[i - 1])
        return Status::InvalidArgument("--densities: iterative levels must decrease (" +
                                       Pct(lc.densities[i - 1]) + " then " + Pct(lc.densities[i]) + ")");
  const std::vector<std::string> known = LotteryModes();
  if (lc.modes.empty()) return Status::InvalidArgument("--modes: at least one mode");
  for (const std::string& m : lc.modes)
    if (std::find(known.begin(), known.end(), m) == known.end())
      return Status::InvalidArgument("--modes: unknown mode '" + m + "' (weight-rewind, lr-rewind, finetune)");
  if (!(lc.finetune_lr > 0)) return Status::InvalidArgument("--finetune-lr must be > 0");

  SLUICE_ASSIGN_OR_RETURN(DatasetInfo data,
                          ReadDatasetInfo(lc.base.data.dir, lc.base.data.train_split, lc.base.data.eval_split));
  const int64_t T = ResolveTrainSteps(lc.base, data.train_images);
  const int64_t k = lc.rewind_iter;
  if (k < 0 || k >= T)
    return Status::InvalidArgument("--rewind-iter " + std::to_string(k) + " must be in [0, " +
                                   std::to_string(T) + ") (the dense run's steps)");
  LotteryConfig c = lc;
  if (c.checkpoint_every <= 0) c.checkpoint_every = std::max<int64_t>(1, T / 10);
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(c.out_dir));
  SLUICE_RETURN_IF_ERROR(CheckOrWriteExperiment(c, ExperimentJson(c, T)));

  // The plan: every run with its config, in the order they must run.
  std::vector<Run> plan;
  Run dense;
  dense.row.mode = "dense";
  dense.row.dir = "dense";
  dense.row.end_step = T;
  dense.config = c.base;
  dense.config.schedule.train_steps = T;
  dense.config.run.model_dir = Path(c, "dense");
  dense.config.run.checkpoint_iters = CheckpointSteps(0, T, c.checkpoint_every, {0, k});
  const std::string dense_final = Path(c, "dense/" + CheckpointName(std::nullopt));
  const std::string dense_k = Path(c, "dense/" + CheckpointName(k));
  plan.push_back(dense);
  for (const std::string& mode : c.modes) {
    std::string prev = dense_final;
    int64_t prev_end = T;
    for (size_t i = 0; i < c.densities.size(); ++i) {
      Run run;
      LotteryRow& row = run.row;
      row.mode = mode;
      row.density = c.densities[i];
      row.level = c.iterative ? static_cast<int>(i) + 1 : 0;
      row.dir = c.iterative ? "iterative/" + mode + "/level_" + std::to_string(i + 1) + "_density_" + Pct(row.density)
                            : "oneshot/" + mode + "/density_" + Pct(row.density);
      TrainConfig& t = run.config;
      t = c.base;
      t.run.model_dir = Path(c, row.dir);
      t.lottery.prune_method = PruneMethodName({c.scope, row.density});
      t.lottery.prune_at = prev;
      if (mode == kWeightRewind) {
        t.lottery.reset_to = dense_k;
        row.start_step = k;
        row.end_step = T;
      } else if (mode == kLrRewind) {
        t.lottery.reset_to = prev;
        t.lottery.reset_global_step_to = dense_k;
        row.start_step = k;
        row.end_step = T;
      } else {
        t.lottery.reset_to = prev;
        t.schedule.force_learning_rate = c.finetune_lr;
        row.start_step = prev_end;
        row.end_step = prev_end + (T - k);
      }
      t.schedule.train_steps = row.end_step;
      t.run.checkpoint_iters = CheckpointSteps(row.start_step, row.end_step, c.checkpoint_every, {});
      plan.push_back(run);
      if (c.iterative) {
        prev = t.run.model_dir + "/" + CheckpointName(std::nullopt);
        prev_end = row.end_step;
      }
    }
  }
  std::vector<LotteryRow> rows;
  for (size_t i = 0; i < plan.size(); ++i) {
    SLUICE_ASSIGN_OR_RETURN(LotteryRow row, RunOne(c, plan[i], static_cast<int>(i + 1),
                                                   static_cast<int>(plan.size())));
    rows.push_back(row);
  }
  return rows;
}

std::string LotteryTable(const std::vector<LotteryRow>& rows) {
  double dense = -1;
  for (const LotteryRow& r : rows)
    if (r.mode == "dense") dense = r.final_top1;
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-14s %8s %9s %6s %8s %9s %9s %9s %9s\n", "mode", "density", "measured",
                "level", "steps", "final", "vs dense", "best", "at step");
  s += buf;
  for (const LotteryRow& r : rows) {
    const std::string delta = r.mode == "dense" || dense < 0
                                  ? std::string("-")
                                  : [&] {
                                      char d[32];
                                      std::snprintf(d, sizeof(d), "%+.4f", r.final_top1 - dense);
                                      return std::string(d);
                                    }();
    std::snprintf(buf, sizeof(buf), "%-14s %8s %9.4f %6s %8lld %9.4f %9s %9.4f %9lld\n", r.mode.c_str(),
                  (Pct(r.density) + "%").c_str(), r.measured_density,
                  r.level ? std::to_string(r.level).c_str() : "-",
                  static_cast<long long>(r.end_step - r.start_step), r.final_top1, delta.c_str(), r.best_top1,
                  static_cast<long long>(r.best_step));
    s += buf;
  }
  return s;
}

Status WriteLotterySummary(const LotteryConfig& c, const std::vector<LotteryRow>& rows) {
  std::string csv =
      "mode,density,level,measured_density,start_step,end_step,steps,final_top1,final_top5,best_top1,"
      "best_step,dir\n";
  char buf[512];
  for (const LotteryRow& r : rows) {
    std::snprintf(buf, sizeof(buf), "%s,%s,%d,%.6f,%lld,%lld,%lld,%.6f,%.6f,%.6f,%lld,%s\n", r.mode.c_str(),
                  Pct(r.density).c_str(), r.level, r.measured_density, static_cast<long long>(r.start_step),
                  static_cast<long long>(r.end_step), static_cast<long long>(r.end_step - r.start_step),
                  r.final_top1, r.final_top5, r.best_top1, static_cast<long long>(r.best_step), r.dir.c_str());
    csv += buf;
  }
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(Path(c, "summary.csv"), csv));
  json j = {{"model", c.base.model.name},
            {"recipe", c.base.recipe},
            {"data_dir", c.base.data.dir},
            {"rewind_iter", c.rewind_iter},
            {"iterative", c.iterative},
            {"scope", c.scope == PruneMethod::Scope::kGlobal ? "global" : "layerwise"},
            {"finetune_lr", c.finetune_lr},
            {"rows", json::array()}};
  for (const LotteryRow& r : rows) j["rows"].push_back(RowJson(r));
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(Path(c, "summary.json"), j.dump(2) + "\n"));
  return formats::WriteFileAtomically(Path(c, "summary.svg"), Svg(c, rows));
}

}  // namespace sluice::train
