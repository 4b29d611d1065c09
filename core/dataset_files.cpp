#include "core/dataset_files.h"

namespace mufl {

std::optional<std::vector<std::string>> dataset_file_names(std::string_view dataset) {
  if (dataset == "synthetic") return std::vector<std::string>{};
  if (dataset == "mnist" || dataset == "fashion-mnist")
    return std::vector<std::string>(kIdxFileNames.begin(), kIdxFileNames.end());
  return std::nullopt;
}

std::string dataset_dir(const std::string& data_dir, const std::string& dataset) {
  return data_dir + "/datasets/" + dataset;
}

}  // namespace mufl
