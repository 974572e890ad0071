from conftest import run_main
from vb_keras.errors import BadAudioError, UserInputError


def test_bad_audio_error_is_one_line_naming_the_file():
    error = BadAudioError("/data/wav/1.wav", "silent (peak below one 16-bit step)")
    assert isinstance(error, UserInputError)
    assert str(error) == "/data/wav/1.wav: silent (peak below one 16-bit step)"
    assert "\n" not in str(error) and error.reason.startswith("silent")


if __name__ == "__main__":
    run_main()
