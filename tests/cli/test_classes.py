"""`bigganctl classes`: the text table and the JSON document of a search."""



def test_classes_cli_text_and_json(cli):
    r = cli("classes", "crane")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("134  n02012849  crane") and "bird" in lines[0]
    assert lines[1].startswith("517  n03126707  crane")
    r = cli("classes", "golden retriever", "--json")
    doc = r.json()
    assert r.exit_code == 0 and doc["count"] >= 1
    assert doc["classes"][0] == {"index": 207, "wnid": "n02099601", "name": "golden retriever",
                                 "synonyms": ["golden retriever"],
                                 "gloss": "an English breed having a long silky golden coat"}
    assert cli("classes", "--json").json()["count"] == 1000
    r = cli("classes", "zzqqxx")
    assert r.exit_code == 1 and r.stdout == "" and "no class matches" in r.stderr
    assert cli("classes", "zzqqxx", "--json").json() == {"query": "zzqqxx", "count": 0, "classes": []}
