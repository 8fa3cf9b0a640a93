#include "sluice/ingest/bboxes.h"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ingest_test_util.h"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {
namespace {

using testing_util::ExpectError;

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::FloatEq;
using ::testing::HasSubstr;

// A box matcher with float tolerance (values are computed in double and stored as float).
MATCHER_P4(Box, xmin, ymin, xmax, ymax, "") {
  return ::testing::Value(arg.xmin, FloatEq(xmin)) && ::testing::Value(arg.ymin, FloatEq(ymin)) &&
         ::testing::Value(arg.xmax, FloatEq(xmax)) && ::testing::Value(arg.ymax, FloatEq(ymax));
}

// An ImageNet-style annotation with the given <size> and boxes (pixel coordinates as text).
std::string Voc(std::string_view width, std::string_view height,
                const std::vector<std::vector<std::string>>& boxes,
                std::string_view filename = "n01440764_18", std::string_view synset = "n01440764") {
  std::string xml = "<annotation>\n\t<folder>n01440764</folder>\n\t<filename>" +
                    std::string(filename) +
                    "</filename>\n\t<source>\n\t\t<database>ImageNet "
                    "database</database>\n\t</source>\n\t<size>\n\t\t<width>" +
                    std::string(width) + "</width>\n\t\t<height>" + std::string(height) +
                    "</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n";
  for (const auto& b : boxes) {
    xml += "\t<object>\n\t\t<name>" + std::string(synset) +
           "</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0"
           "</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>" +
           b[0] + "</xmin>\n\t\t\t<ymin>" + b[1] + "</ymin>\n\t\t\t<xmax>" + b[2] +
           "</xmax>\n\t\t\t<ymax>" + b[3] + "</ymax>\n\t\t</bndbox>\n\t</object>\n";
  }
  return xml + "</annotation>\n";
}


// ---- ParseVocXml
// -------------------------------------------------------------------------------------

TEST(VocXmlTest, ScalesByTheXmlSize) {
  std::string filename, synset;
  auto r =
      ParseVocXml(Voc("500", "375", {{"60", "21", "433", "354"}}), "a.xml", &filename, &synset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(60 / 500.0, 21 / 375.0, 433 / 500.0, 354 / 375.0)));
  EXPECT_EQ(filename, "n01440764_18");
  EXPECT_EQ(synset, "n01440764");
}

TEST(VocXmlTest, MultipleObjectsInOrder) {
  auto r = ParseVocXml(
      Voc("200", "100",
          {{"0", "0", "100", "50"}, {"100", "50", "200", "100"}, {"10", "10", "20", "20"}}),
      "a.xml", nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(0, 0, 0.5, 0.5), Box(0.5, 0.5, 1, 1), Box(0.05, 0.1, 0.1, 0.2)));
}

TEST(VocXmlTest, ReversedMinMaxAreSwapped) {
  auto r = ParseVocXml(Voc("100", "100", {{"80", "90", "20", "10"}}), "a.xml", nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(0.2, 0.1, 0.8, 0.9)));
}

TEST(VocXmlTest, CoordinatesOutsideTheImageAreClamped) {
  auto r = ParseVocXml(Voc("100", "50", {{"-10", "-5", "150", "60"}}), "a.xml", nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(0, 0, 1, 1)));
}

TEST(VocXmlTest, DegenerateBoxesAreDropped) {
  auto r = ParseVocXml(Voc("100", "100",
                           {{"10", "10", "10", "50"},    // zero width
                            {"10", "30", "50", "30"},    // zero height
                            {"120", "10", "150", "50"},  // right of the image
                            {"10", "-50", "50", "-1"},   // above the image
                            {"25", "25", "75", "75"}}),  // the one kept
                       "a.xml", nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(0.25, 0.25, 0.75, 0.75)));
}

TEST(VocXmlTest, FractionalValuesTruncateLikeIntOfFloat) {
  // process_bounding_boxes.py: int(float(text)), for pixel values and for the size.
  auto r = ParseVocXml(Voc(" 100.9 ", "200.2", {{"10.9", "20.5", " 50.99\n", "+1e2"}}), "a.xml",
                       nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(0.10, 0.10, 0.50, 0.50)));
}

TEST(VocXmlTest, NoObjectsIsAnEmptyList) {
  std::string synset = "unchanged";
  auto r = ParseVocXml(Voc("500", "375", {}), "a.xml", nullptr, &synset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(synset, "");
  // Without boxes the size is not needed.
  auto bare =
      ParseVocXml("<annotation><filename>x</filename></annotation>", "b.xml", nullptr, nullptr);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_TRUE(bare->empty());
}

TEST(VocXmlTest, ToleratesPrologCommentsAttributesAndOtherTags) {
  std::string xml =
      "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE annotation>\n"
      "<!-- made by hand; <bndbox> in a comment is not a box -->\n"
      "<annotation verified=\"yes\">\r\n  <filename>a&amp;b<![CDATA[<c>]]></filename>\r\n"
      "  <owner><flickrid>x</flickrid></owner>\n"
      "  <size ><width units='px>'>400</width><height>200</height><depth/></size>\n"
      "  <object><name> n02119477 </name><part><name>head</name></part>\n"
      "    <bndbox><xmin>100</xmin><ymin>50</ymin><xmax>300</xmax><ymax>150</ymax></bndbox>\n"
      "  </object>\n</annotation >\n";
  std::string filename, synset;
  auto r = ParseVocXml(xml, "a.xml", &filename, &synset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(Box(0.25, 0.25, 0.75, 0.75)));
  EXPECT_EQ(filename, "a&b<c>");
  EXPECT_EQ(synset, "n02119477");
}

TEST(VocXmlTest, MissingSizeIsDataLoss) {
  std::string xml =
      "<annotation><object><name>n0</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
      "<ymax>5</ymax></bndbox></object></annotation>";
  ExpectError(ParseVocXml(xml, "dir/a.xml", nullptr, nullptr), StatusCode::kDataLoss,
              {"dir/a.xml", "no image <size>"});
}

TEST(VocXmlTest, ZeroOrNegativeSizeIsDataLoss) {
  // The reference divides by zero here (and by -1 silently drops every box).
  ExpectError(ParseVocXml(Voc("0", "375", {{"1", "2", "3", "4"}}), "a.xml", nullptr, nullptr),
              StatusCode::kDataLoss, {"a.xml", "not positive"});
  ExpectError(ParseVocXml(Voc("500", "0.5", {{"1", "2", "3", "4"}}), "a.xml", nullptr, nullptr),
              StatusCode::kDataLoss, {"a.xml", "not positive"});
  ExpectError(ParseVocXml(Voc("-1", "375", {{"1", "2", "3", "4"}}), "a.xml", nullptr, nullptr),
              StatusCode::kDataLoss, {"a.xml", "not positive"});
}

TEST(VocXmlTest, MalformedNumbersAreDataLoss) {
  for (std::string_view bad : {"", "abc", "12px", "1,5", "nan", "inf", "--1", "0x10"}) {
    ExpectError(ParseVocXml(Voc("500", "375", {{"1", std::string(bad), "3", "4"}}), "a.xml",
                            nullptr, nullptr),
                StatusCode::kDataLoss, {"a.xml", "<ymin>", "not a number"});
  }
  ExpectError(ParseVocXml(Voc("wide", "375", {{"1", "2", "3", "4"}}), "a.xml", nullptr, nullptr),
              StatusCode::kDataLoss, {"a.xml", "<width>", "not a number"});
}

TEST(VocXmlTest, BoxWithoutACoordinateIsDataLoss) {
  std::string xml =
      "<annotation><size><width>10</width><height>10</height></size><object><bndbox><xmin>1</xmin>"
      "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>";
  ExpectError(ParseVocXml(xml, "a.xml", nullptr, nullptr), StatusCode::kDataLoss,
              {"a.xml", "has no <ymin>"});
}

TEST(VocXmlTest, MalformedXmlIsDataLossWithOffset) {
  struct Case {
    std::string xml;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"", "no element"},
      {"\x89PNG\r\n\x1a\n\0\0binary", "text outside the root element"},
      {"<annotation><size></annotation>", "does not close <size>"},
      {"<annotation><size>", "not closed at end of file"},
      {"<annotation></size></annotation>", "does not close <annotation>"},
      {"<annotation/><annotation/>", "second root element"},
      {"<annotation><filename>x</filename", "unterminated end tag"},
      {"<annotation><filename x=\"1>", "unterminated start tag"},
      {"<annotation><!-- never closed", "unterminated comment"},
      {"<annotation>< filename></annotation>", "not followed by a tag name"},
      {"</annotation>", "without a start tag"},
  };
  for (const Case& c : cases) {
    auto r = ParseVocXml(c.xml, "bad.xml", nullptr, nullptr);
    ASSERT_FALSE(r.ok()) << c.xml;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << c.xml;
    EXPECT_THAT(r.status().message(), HasSubstr("bad.xml: malformed XML at byte ")) << c.xml;
    EXPECT_THAT(r.status().message(), HasSubstr(c.reason)) << c.xml;
  }
}

TEST(VocXmlTest, WrongRootIsDataLoss) {
  ExpectError(ParseVocXml("<html><body/></html>", "a.xml", nullptr, nullptr), StatusCode::kDataLoss,
              {"a.xml", "root element is <html>"});
}

// ---- CSV
// ---------------------------------------------------------------------------------------------

TEST(BoxCsvTest, ParsesTheConverterOutput) {
  auto r = ParseBoxCsv(
      "n00007846_64193.JPEG,0.0060,0.2620,0.7545,0.9940\n"
      "n01440764_18.JPEG,0.1200,0.0560,0.8660,0.9440\r\n"
      "\n"
      "n00007846_64193.JPEG,0.5000,0.0000,1.0000,0.2500\n",
      "bounding_boxes.csv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_THAT(r->at("n00007846_64193.JPEG"),
              ElementsAre(Box(0.006, 0.262, 0.7545, 0.994), Box(0.5, 0, 1, 0.25)));
  EXPECT_THAT(r->at("n01440764_18.JPEG"), ElementsAre(Box(0.12, 0.056, 0.866, 0.944)));
}

TEST(BoxCsvTest, ErrorsNameFileAndLine) {
  const std::string ok = "a.JPEG,0.1,0.1,0.2,0.2\n";
  ExpectError(ParseBoxCsv(ok + "b.JPEG,0.1,0.1,0.2\n", "b.csv"), StatusCode::kDataLoss,
              {"b.csv:2:", "has 4 fields, want 5"});
  ExpectError(ParseBoxCsv(ok + "b.JPEG,0.1,0.1,0.2,0.2,0.3\n", "b.csv"), StatusCode::kDataLoss,
              {"b.csv:2:", "has 6 fields"});
  ExpectError(ParseBoxCsv(ok + ok + "b.JPEG,0.1,x,0.2,0.2\n", "b.csv"), StatusCode::kDataLoss,
              {"b.csv:3:", "ymin is not a number"});
  ExpectError(ParseBoxCsv("b.JPEG,0.1,0.1,1.2,0.2\n", "b.csv"), StatusCode::kDataLoss,
              {"b.csv:1:", "xmax 1.2 is outside [0, 1]"});
  ExpectError(ParseBoxCsv("b.JPEG,0.3,0.1,0.2,0.2\n", "b.csv"), StatusCode::kDataLoss,
              {"b.csv:1:", "min > max"});
  ExpectError(ParseBoxCsv(",0.1,0.1,0.2,0.2\n", "b.csv"), StatusCode::kDataLoss,
              {"b.csv:1:", "empty file name"});
}

// ---- ReadBoundingBoxes: files on disk
// ------------------------------------------------------------------

class ReadBoundingBoxesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("bboxes_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string PathOf(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a ustar archive of (member path, contents) with libarchive, gzip-compressed unless
  // `gzip` is false. A member path ending in '/' is a directory.
  std::string WriteTarGz(const std::string& name,
                         const std::vector<std::pair<std::string, std::string>>& members,
                         bool gzip = true) {
    std::string path = PathOf(name);
    archive* a = archive_write_new();
    if (gzip) {
      EXPECT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    }
    EXPECT_EQ(archive_write_set_format_ustar(a), ARCHIVE_OK);
    EXPECT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
    for (const auto& [member, data] : members) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, member.c_str());
      bool is_dir = !member.empty() && member.back() == '/';
      archive_entry_set_filetype(e, is_dir ? AE_IFDIR : AE_IFREG);
      archive_entry_set_perm(e, is_dir ? 0755 : 0644);
      archive_entry_set_size(e, is_dir ? 0 : static_cast<la_int64_t>(data.size()));
      EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
      if (!is_dir) {
        EXPECT_EQ(archive_write_data(a, data.data(), data.size()),
                  static_cast<la_ssize_t>(data.size()));
      }
      archive_entry_free(e);
    }
    EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return path;
  }

  std::string WriteFile(const std::string& name, std::string_view data) {
    std::string path = PathOf(name);
    EXPECT_TRUE(formats::WriteFileAtomically(path, data).ok());
    return path;
  }

  std::string ReadBack(const std::string& path) { return formats::ReadFile(path).value(); }

  // A realistic archive: synset directories, many annotations, one non-XML member.
  std::vector<std::pair<std::string, std::string>> ManyMembers(int n) {
    std::vector<std::pair<std::string, std::string>> members = {{"n01440764/", ""}};
    for (int i = 0; i < n; ++i) {
      std::string base = "n01440764_" + std::to_string(1000 + i);
      members.push_back({"n01440764/" + base + ".xml",
                         Voc("500", "400", {{std::to_string(i % 200), "0", "400", "200"}}, base)});
    }
    return members;
  }

  fs::path dir_;
};

TEST_F(ReadBoundingBoxesTest, ReadsTheXmlTarGz) {
  std::string path = WriteTarGz(
      "ILSVRC2012_bbox_train_v2.tar.gz",
      {{"n01440764/", ""},
       {"n01440764/n01440764_18.xml", Voc("500", "375", {{"60", "21", "433", "354"}})},
       {"n01440764/README.txt", "not an annotation"},
       {"n01443537/n01443537_2.xml",
        Voc("100", "100", {{"10", "10", "50", "50"}, {"90", "90", "20", "20"}}, "n01443537_%s",
            "n01443537")},
       {"n01443537/n01443537_3.xml", Voc("100", "100", {{"10", "10", "10", "50"}})},  // degenerate
       {"n01443537/n01443537_4.xml", Voc("100", "100", {})},                          // no object
       {"../n09999999_1.xml", Voc("100", "100", {{"0", "0", "50", "50"}})},           // unsafe
       {"/abs/n09999999_2.xml", Voc("100", "100", {{"0", "0", "50", "50"}})}});       // unsafe
  auto r = ReadBoundingBoxes(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_THAT(r->at("n01440764_18.JPEG"),
              ElementsAre(Box(60 / 500.0, 21 / 375.0, 433 / 500.0, 354 / 375.0)));
  // Keyed by the member name, not by the noisy <filename>.
  EXPECT_THAT(r->at("n01443537_2.JPEG"),
              ElementsAre(Box(0.1, 0.1, 0.5, 0.5), Box(0.2, 0.2, 0.9, 0.9)));
}

TEST_F(ReadBoundingBoxesTest, ReadsTheCsv) {
  std::string path = WriteFile("bounding_boxes.csv",
                               "n00007846_64193.JPEG,0.0060,0.2620,0.7545,0.9940\n"
                               "n00007846_64193.JPEG,0.1000,0.2000,0.3000,0.4000\n"
                               "n01440764_18.JPEG,0.1200,0.0560,0.8660,0.9440\n");
  auto r = ReadBoundingBoxes(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at("n00007846_64193.JPEG").size(), 2u);
  EXPECT_THAT(r->at("n01440764_18.JPEG"), ElementsAre(Box(0.12, 0.056, 0.866, 0.944)));
}

TEST_F(ReadBoundingBoxesTest, ArchiveAndCsvOfTheSameBoxesAgree) {
  auto members = ManyMembers(50);
  std::string csv;
  for (int i = 0; i < 50; ++i) {
    char line[128];
    std::snprintf(line, sizeof(line), "n01440764_%d.JPEG,%.4f,0.0000,0.8000,0.5000\n", 1000 + i,
                  (i % 200) / 500.0);
    csv += line;
  }
  auto from_xml = ReadBoundingBoxes(WriteTarGz("b.tar.gz", members));
  auto from_csv = ReadBoundingBoxes(WriteFile("b.csv", csv));
  ASSERT_TRUE(from_xml.ok()) << from_xml.status().ToString();
  ASSERT_TRUE(from_csv.ok()) << from_csv.status().ToString();
  ASSERT_EQ(from_xml->size(), 50u);
  ASSERT_EQ(from_csv->size(), 50u);
  for (const auto& [key, boxes] : *from_xml) {
    ASSERT_EQ(from_csv->count(key), 1u) << key;
    const BoundingBox& c = from_csv->at(key)[0];
    EXPECT_THAT(boxes, ElementsAre(Box(c.xmin, c.ymin, c.xmax, c.ymax))) << key;
  }
}

TEST_F(ReadBoundingBoxesTest, TruncatedArchiveIsDataLossNamingIt) {
  std::string path = WriteTarGz("full.tar.gz", ManyMembers(400));
  std::string bytes = ReadBack(path);
  for (size_t keep : {bytes.size() / 2, bytes.size() - 5, size_t{30}}) {
    std::string cut = WriteFile("cut.tar.gz", std::string_view(bytes).substr(0, keep));
    auto r = ReadBoundingBoxes(cut);
    ExpectError(r, StatusCode::kDataLoss, {cut});
  }
}

TEST_F(ReadBoundingBoxesTest, CorruptTarHeaderIsDataLossNamingArchiveAndPreviousMember) {
  auto members = ManyMembers(3);
  std::string bytes = ReadBack(WriteTarGz("plain.tar", members, /*gzip=*/false));
  // Members: the directory (header at 0), then each XML (header + one data block). Damage the
  // name of the third XML's header: its checksum no longer matches.
  size_t third_xml_header = 512 + 2 * 1024;
  ASSERT_EQ(bytes.substr(third_xml_header, 10), "n01440764/");
  bytes[third_xml_header + 3] ^= 0x20;
  std::string path = WriteFile("corrupt.tar", bytes);
  ExpectError(ReadBoundingBoxes(path), StatusCode::kDataLoss,
              {path, "after member n01440764/n01440764_1001.xml"});
}

TEST_F(ReadBoundingBoxesTest, CorruptCompressedStreamIsDataLoss) {
  std::string bytes = ReadBack(WriteTarGz("full.tar.gz", ManyMembers(400)));
  // Damage the deflate stream early on: decoding fails or the tar headers that follow are garbage.
  for (size_t at : {size_t{40}, size_t{200}, bytes.size() / 4}) {
    std::string corrupt = bytes;
    corrupt[at] = static_cast<char>(~corrupt[at]);
    std::string path = WriteFile("corrupt.tar.gz", corrupt);
    auto r = ReadBoundingBoxes(path);
    ExpectError(r, StatusCode::kDataLoss, {path});
  }
}

TEST_F(ReadBoundingBoxesTest, GarbageXmlIsDataLossNamingArchiveAndMember) {
  std::string path = WriteTarGz(
      "b.tar.gz", {{"n01440764/n01440764_18.xml", Voc("500", "375", {{"60", "21", "433", "354"}})},
                   {"n01440764/n01440764_19.xml", "\x01\x02 not xml at all"}});
  ExpectError(ReadBoundingBoxes(path), StatusCode::kDataLoss,
              {path + ":n01440764/n01440764_19.xml", "malformed XML"});
  std::string bad_number =
      WriteTarGz("c.tar.gz",
                 {{"n01440764/n01440764_20.xml", Voc("500", "375", {{"6O", "21", "433", "354"}})}});
  ExpectError(ReadBoundingBoxes(bad_number), StatusCode::kDataLoss,
              {bad_number + ":n01440764/n01440764_20.xml", "<xmin>", "not a number"});
}

TEST_F(ReadBoundingBoxesTest, ArchiveWithoutXmlIsInvalidArgument) {
  std::string path = WriteTarGz("images.tar.gz", {{"n01440764/n01440764_18.JPEG", "\xff\xd8\xff"}});
  ExpectError(ReadBoundingBoxes(path), StatusCode::kInvalidArgument, {path, "no .xml member"});
}

TEST_F(ReadBoundingBoxesTest, ArchiveNameWithoutArchiveContentIsDataLoss) {
  std::string path = WriteFile("boxes.tar.gz", "a.JPEG,0.1,0.1,0.2,0.2\n");
  ExpectError(ReadBoundingBoxes(path), StatusCode::kDataLoss, {path, "no archive signature"});
}

TEST_F(ReadBoundingBoxesTest, BadCsvNamesFileAndLine) {
  std::string path = WriteFile("bounding_boxes.csv", "a.JPEG,0.1,0.1,0.2,0.2\na.JPEG;0.1\n");
  ExpectError(ReadBoundingBoxes(path), StatusCode::kDataLoss, {path + ":2:"});
}

TEST_F(ReadBoundingBoxesTest, MissingFileIsNotFound) {
  ExpectError(ReadBoundingBoxes(PathOf("nope.tar.gz")), StatusCode::kNotFound, {"nope.tar.gz"});
}

}  // namespace
}  // namespace sluice::ingest
