#include "scheduler/energy/carbon_intensity.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;

namespace {
constexpr int64_t k2024 = 1704067200;  // 2024-01-01T00:00:00Z
constexpr int64_t k2022 = 1640995200;  // 2022-01-01T00:00:00Z

std::string write(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << body;
  return path;
}

const char* kEmHeader =
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO\xE2\x82\x82" "eq/kWh (direct),"
    "Carbon Intensity gCO\xE2\x82\x82" "eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method\r\n";

std::string em_row(const std::string& hour, const std::string& direct) {
  return "2024-01-01 " + hour + ",Germany,Germany,DE," + direct + ",999,50,40,entsoe.eu,false,\r\n";
}
}  // namespace

TEST_CASE("carbon_intensity: Electricity Maps CSV with CRLF and UTF-8 header, direct column") {
  testing::TempDir dir;
  std::string path = write(dir, "em.csv",
                           std::string(kEmHeader) + em_row("00:00:00", "100") + em_row("01:00:00", "200") +
                               em_row("02:00:00", "400"));
  auto c = CarbonIntensity::load_csv(path);
  REQUIRE(c.ok());
  CHECK(c->hours() == 3);
  CHECK(c->first_hour() == k2024);
  CHECK(c->source() == path);
  CHECK(c->at(k2024) == Approx(100));         // not the LCA column (999)
  CHECK(c->at(k2024 + 3599) == Approx(100));
  CHECK(c->at(k2024 + 3600) == Approx(200));
  CHECK(c->at(k2024 + 2 * 3600 + 10) == Approx(400));
  // Periodic over its own length: hour 3 is hour 0 again, hour -1 is hour 2.
  CHECK(c->at(k2024 + 3 * 3600) == Approx(100));
  CHECK(c->at(k2024 - 1) == Approx(400));
  // Mean over half of hour 0 and all of hour 1: (1800·100 + 3600·200) / 5400.
  CHECK(c->mean_over(k2024 + 1800, k2024 + 7200) == Approx(900000.0 / 5400));
  // Over whole periods the mean is the series mean, from any start.
  CHECK(c->mean_over(k2024 + 1234, k2024 + 1234 + 30 * 3 * 3600) == Approx(700.0 / 3));
  CHECK(c->mean_over(k2024 + 3600, k2024 + 3600) == Approx(200));  // empty span: at(from)
}

TEST_CASE("carbon_intensity: EIA CSV with empty fields takes the previous hour") {
  testing::TempDir dir;
  std::string body =
      "timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"
      "2022-01-01 00:00:00+00:00,1,2,3,4,5,6,7,8,\n"       // leading empty: first value's
      "2022-01-01 01:00:00+00:00,1,2,3,4,5,6,7,8,300.5\n"
      "2022-01-01 02:00:00+00:00,1,2,3,4,5,6,7,8,\n"       // empty: previous hour's
      "2022-01-01 03:00:00+00:00,1,2,3,4,5,6,7,8,100\n";
  auto c = CarbonIntensity::load_csv(write(dir, "eia.csv", body));
  REQUIRE(c.ok());
  CHECK(c->hours() == 4);
  CHECK(c->first_hour() == k2022);
  CHECK(c->at(k2022) == Approx(300.5));
  CHECK(c->at(k2022 + 3600) == Approx(300.5));
  CHECK(c->at(k2022 + 2 * 3600) == Approx(300.5));
  CHECK(c->at(k2022 + 3 * 3600) == Approx(100));
}

TEST_CASE("carbon_intensity: bad files are refused with the line") {
  testing::TempDir dir;
  auto missing = CarbonIntensity::load_csv(dir.file("nope.csv"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().is_not_found());

  struct Case {
    const char* name;
    std::string body;
    const char* needle;
  };
  const std::string eia = "timestamp,avg_CI\n";
  std::vector<Case> cases = {
      {"format.csv", "time,value\n2022-01-01 00:00:00+00:00,1\n", ":1:"},
      {"empty.csv", "", ":1:"},
      {"gap.csv", eia + "2022-01-01 00:00:00+00:00,1\n2022-01-01 02:00:00+00:00,1\n", ":3: gap"},
      {"order.csv", eia + "2022-01-01 01:00:00+00:00,1\n2022-01-01 00:00:00+00:00,1\n", ":3: timestamp out of order"},
      {"value.csv", eia + "2022-01-01 00:00:00+00:00,abc\n", ":2: bad carbon intensity"},
      {"time.csv", eia + "yesterday,1\n", ":2: bad timestamp"},
      {"fields.csv", eia + "2022-01-01 00:00:00+00:00,1,2\n", ":2: expected 2 fields"},
      {"novalue.csv", eia + "2022-01-01 00:00:00+00:00,\n", "no hour"},
      {"header.csv", eia, "no hour"},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    auto r = CarbonIntensity::load_csv(write(dir, k.name, k.body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message().find(k.name) != std::string::npos);
    CHECK(r.status().message().find(k.needle) != std::string::npos);
  }
}

TEST_CASE("carbon_intensity: constant series") {
  CarbonIntensity c = CarbonIntensity::constant(250);
  CHECK(c.at(0) == 250);
  CHECK(c.at(-123456789) == 250);
  CHECK(c.mean_over(100, 1000000) == Approx(250));
  CHECK(c.source() == "constant");
  CHECK(c.hours() == 1);
}

TEST_CASE("carbon_intensity: the shipped files load") {
  for (const char* f : {"CISO_2022_hourly.csv", "DE-LU_2024_hourly.csv", "ZA_2024_hourly.csv", "MISO_2022_hourly.csv"}) {
    INFO(f);
    auto c = CarbonIntensity::load_csv(std::string(MUFL_SOURCE_DIR) + "/data/carbon-intensity/" + f);
    REQUIRE(c.ok());
    CHECK(c->hours() >= 8760);
  }
  auto de = CarbonIntensity::load_csv(std::string(MUFL_SOURCE_DIR) + "/data/carbon-intensity/DE-LU_2024_hourly.csv");
  REQUIRE(de.ok());
  CHECK(de->at(k2024) == Approx(133.1));        // first row's direct value
  CHECK(de->at(k2024 + 3600) == Approx(134.17));
}
