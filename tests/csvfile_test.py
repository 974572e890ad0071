import pytest

from conftest import run_main
from vb_keras.data import csvfile
from vb_keras.errors import UserInputError


def test_every_cell_is_a_string_and_empty_cells_stay_empty(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("File_ID,Age,Country\n[0042],24,\n 7 ,NA,US\n")
    table = csvfile.read_strings(path)
    assert table.to_dict("list") == {"File_ID": ["[0042]", " 7 "], "Age": ["24", "NA"],
                                     "Country": ["", "US"]}
    assert list(csvfile.clean_ids(table.File_ID)) == ["0042", "7"]   # leading zeros kept
    assert list(csvfile.read_strings(path, nrows=0).columns) == ["File_ID", "Age", "Country"]


@pytest.mark.parametrize("content", [b"", b"a,b\n1,2,3,4\n\"unclosed", b"\xff\xfe\x00\x81,x\n"])
def test_unreadable_files_are_one_line_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "data_info.csv"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match=r"data_info.csv: not a readable CSV \(") as error:
        csvfile.read_strings(path)
    assert "\n" not in str(error.value)


def test_a_header_only_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "data_info.csv"
    path.write_text("File_ID,Split,Age\n")
    with pytest.raises(UserInputError, match=r"data_info.csv: no rows below the header line$"):
        csvfile.read_strings(path)
    assert list(csvfile.read_strings(path, nrows=0).columns) == ["File_ID", "Split", "Age"]


if __name__ == "__main__":
    run_main()
