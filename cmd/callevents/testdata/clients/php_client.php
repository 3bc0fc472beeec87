<?php
// Drive the PhoneCallEvents SOAP service with PHP's SoapClient, the most
// common real-world caller.
//
// Run by TestE2ESOAPClients (clients_e2e_test.go) as `php php_client.php`.
// Everything comes from the environment: CE_WSDL_URL, CE_CLIENT_ID and
// CE_CLIENT_SECRET (admin), CE_SCOPED_CLIENT_ID and CE_SCOPED_CLIENT_SECRET
// (scope org:0003), CE_EXTENSION, CE_FOREIGN_EXTENSION and optionally
// CE_RAW_DIR, where every raw response envelope is saved for schema
// validation.
//
// Authenticates VoipNow style: username (client id) and password (client
// secret) in a userCredentials SoapHeader built from a PHP array. Because
// the WSDL declares that header, PHP encodes the array with the schema, so
// its children go out qualified. One more call uses what VoipNow SystemAPI
// sample code sends: the header in the http://4psa.com/HeaderData.xsd/…
// namespace, built from a stdClass, which PHP sends with unqualified
// children. Checks every observation itself, prints one JSON object on
// stdout and exits 1 on the first mismatch.

const NS = 'urn:callevents:phonecallevents:1';
const CLIENT = 'php';

$EXT = getenv('CE_EXTENSION');
$FOREIGN = getenv('CE_FOREIGN_EXTENSION');
$RAW_DIR = (string) getenv('CE_RAW_DIR');
$HOOK = 'https://hooks.example.com/' . CLIENT;
$SECRET = 'php-webhook-secret-0123456789';

$report = ['client' => CLIENT, 'extension' => $EXT];
$saved = 0; // responses seen, numbering the files in CE_RAW_DIR

function fail(string $msg): void
{
    global $report;
    fwrite(STDERR, "php_client: $msg\n");
    $report['error'] = $msg;
    echo json_encode($report, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
    exit(1);
}

function expect(bool $cond, string $msg): void
{
    if (!$cond) {
        fail($msg);
    }
}

function show($v): string
{
    return json_encode($v, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
}

final class Session
{
    private SoapClient $client;
    private string $tag;

    public function __construct(string $username, string $password, int $version = SOAP_1_1,
                                string $headerNS = NS, bool $asObject = false)
    {
        $this->tag = $version === SOAP_1_2 ? 'soap12' : 'soap11';
        $this->client = new SoapClient(getenv('CE_WSDL_URL'), [
            'cache_wsdl' => WSDL_CACHE_NONE,
            'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
            'soap_version' => $version,
            'trace' => true,
            'exceptions' => true,
            'connection_timeout' => 10,
        ]);
        $credentials = ['username' => $username, 'password' => $password];
        $this->client->__setSoapHeaders([
            new SoapHeader($headerNS, 'userCredentials', $asObject ? (object) $credentials : $credentials),
        ]);
    }

    public function call(string $op, array $args)
    {
        try {
            return $this->client->__soapCall($op, [$args]);
        } finally {
            $this->save($op);
        }
    }

    // headerChildren tells how the last request's userCredentials children
    // were written: "qualified" (in the header's namespace) or "unqualified".
    public function lastRequest(): string
    {
        return (string) $this->client->__getLastRequest();
    }

    public function headerChildren(): string
    {
        // (php-soap does not need the dom extension, so read PHP's own,
        // regular serialization with a pattern: a prefix or an xmlns on the
        // first child, or a default xmlns on userCredentials, qualifies it.)
        $req = (string) $this->client->__getLastRequest();
        $ok = preg_match('/<(?:[\w.-]+:)?userCredentials\b([^>]*)>\s*<([\w.-]+:)?[A-Za-z][\w.-]*([^>]*)>/', $req, $m);
        expect($ok === 1, 'last request has no userCredentials children: ' . $req);
        $qualified = $m[2] !== '' || str_contains($m[3], 'xmlns=') || preg_match('/\bxmlns="[^"]/', $m[1]) === 1;
        return $qualified ? 'qualified' : 'unqualified';
    }

    private function save(string $op): void
    {
        global $RAW_DIR, $saved;
        $saved++;
        $resp = $this->client->__getLastResponse();
        if ($RAW_DIR === '' || $resp === null || $resp === '') {
            return;
        }
        file_put_contents(sprintf('%s/%s-%s-%02d-%s.xml', $RAW_DIR, CLIENT, $this->tag, $saved, $op), $resp);
    }

    // fault calls $op expecting a SOAP fault and returns what SoapFault exposes.
    public function fault(string $op, array $args): array
    {
        try {
            $this->call($op, $args);
        } catch (SoapFault $f) {
            expect(isset($f->detail->serviceFault), "$op fault has no detail->serviceFault: " . show($f->detail ?? null));
            $sf = $f->detail->serviceFault;
            return [
                'code' => (int) $sf->code,
                'message' => (string) $sf->message,
                'faultcode' => $f->faultcode,
                'faultstring' => $f->faultstring,
            ];
        }
        fail("$op: expected a SOAP fault, got a response");
    }
}

function eventOut($ev): array
{
    return [
        'id' => $ev->id, 'extension' => $ev->extension, 'type' => $ev->type, 'method' => $ev->method,
        'url' => $ev->url, 'status' => $ev->status, 'note' => $ev->note, 'hasSecret' => $ev->hasSecret,
        'modified' => $ev->modified,
    ];
}

// events returns the phoneCallEvent list of a Get response (absent when empty).
function events($r): array
{
    return isset($r->phoneCallEvent) ? $r->phoneCallEvent : [];
}

function ids(array $events): array
{
    return array_map(fn($e) => $e->id, $events);
}

try {
    $admin = new Session(getenv('CE_CLIENT_ID'), getenv('CE_CLIENT_SECRET'));

    // 0. VoipNow SystemAPI style header: 4psa namespace, unqualified children.
    $voipnow = new Session(getenv('CE_CLIENT_ID'), getenv('CE_CLIENT_SECRET'), SOAP_1_1,
                           'http://4psa.com/HeaderData.xsd/3.5.0', true);
    $r = $voipnow->call('GetPhoneCallEvents', ['extension' => $EXT]);
    $report['voipnowHeader'] = ['children' => $voipnow->headerChildren(), 'total' => $r->totalResults];
    expect($report['voipnowHeader'] === ['children' => 'unqualified', 'total' => 0], 'VoipNow header ' . show($report['voipnowHeader']));
    // The same header built from an array: outside the WSDL's namespace PHP
    // sends it as an Apache map (<item><key>username</key><value>…).
    $voipnowArray = new Session(getenv('CE_CLIENT_ID'), getenv('CE_CLIENT_SECRET'), SOAP_1_1,
                                'http://4psa.com/HeaderData.xsd/3.5.0', false);
    $r = $voipnowArray->call('GetPhoneCallEvents', ['extension' => $EXT]);
    $report['voipnowArrayHeader'] = ['map' => str_contains($voipnowArray->lastRequest(), '<key>username</key>'), 'total' => $r->totalResults];
    expect($report['voipnowArrayHeader'] === ['map' => true, 'total' => 0], 'VoipNow array header ' . show($report['voipnowArrayHeader']));

    // 1. Add three Call Events.
    $adds = [
        ['extension' => $EXT, 'type' => 0, 'url' => "$HOOK/dial-in"],
        ['extension' => $EXT, 'type' => 2, 'url' => "$HOOK/hangup", 'method' => 1,
         'note' => "hangup note <&> \u{e9}\u{2713}", 'secret' => $SECRET],
        ['extension' => $EXT, 'type' => 3, 'url' => "$HOOK/answer-in?x=1&y=2", 'method' => 0, 'status' => 1],
    ];
    $added = [];
    foreach ($adds as $a) {
        $r = $admin->call('AddPhoneCallEvent', $a);
        $report['headerChildren'] = $admin->headerChildren();
        expect($r->result === 'success', 'Add result ' . show($r));
        $ev = eventOut($r->phoneCallEvent);
        expect(preg_match('/^[A-Za-z0-9]{30}$/', $ev['id']) === 1, 'Add id ' . show($ev));
        expect($ev['extension'] === $EXT && $ev['type'] === $a['type'] && $ev['url'] === $a['url'], 'Add echoed ' . show($ev));
        expect($ev['method'] === ($a['method'] ?? 0) && $ev['status'] === 1, 'Add defaults ' . show($ev));
        expect($ev['note'] === ($a['note'] ?? ''), 'Add note ' . show($ev));
        expect($ev['hasSecret'] === isset($a['secret']), 'Add hasSecret ' . show($ev));
        expect(is_string($ev['modified']) && $ev['modified'] !== '', 'Add modified ' . show($ev));
        $added[] = $ev;
    }
    $ids = array_column($added, 'id');
    expect(count(array_unique($ids)) === 3, 'ids not distinct ' . show($ids));
    $report['ids'] = $ids;
    $report['hasSecret'] = array_column($added, 'hasSecret');
    $report['added'] = $added;

    // 2. Get with paging and filters.
    $p1 = $admin->call('GetPhoneCallEvents', ['extension' => $EXT, 'startIndex' => 0, 'count' => 2]);
    $p2 = $admin->call('GetPhoneCallEvents', ['extension' => $EXT, 'startIndex' => 2, 'count' => 2]);
    $report['pages'] = [
        ['count' => count(events($p1)), 'total' => $p1->totalResults, 'ids' => ids(events($p1))],
        ['count' => count(events($p2)), 'total' => $p2->totalResults, 'ids' => ids(events($p2))],
    ];
    expect(count(events($p1)) === 2 && $p1->totalResults === 3, 'page 1 ' . show($report['pages'][0]));
    expect(count(events($p2)) === 1 && $p2->totalResults === 3, 'page 2 ' . show($report['pages'][1]));
    $paged = array_merge(ids(events($p1)), ids(events($p2)));
    $sortedIds = $ids;
    sort($paged);
    sort($sortedIds);
    expect($paged === $sortedIds, 'pages ' . show($paged) . ' added ' . show($ids));
    $byType = $admin->call('GetPhoneCallEvents', ['extension' => $EXT, 'type' => 2]);
    $report['byType'] = ['total' => $byType->totalResults, 'ids' => ids(events($byType))];
    expect($report['byType'] === ['total' => 1, 'ids' => [$ids[1]]], 'by type ' . show($report['byType']));
    $byID = $admin->call('GetPhoneCallEvents', ['extension' => $EXT, 'id' => $ids[0]]);
    $report['byId'] = ['total' => $byID->totalResults, 'ids' => ids(events($byID))];
    expect($report['byId'] === ['total' => 1, 'ids' => [$ids[0]]], 'by id ' . show($report['byId']));
    $got = eventOut(events($byID)[0]);
    expect($got['url'] === $adds[0]['url'] && $got['type'] === 0 && $got['hasSecret'] === false, 'by id event ' . show($got));

    // 3. Edit (url, note) and SetPhoneCallEventStatus, then read back.
    $newURL = "$HOOK/hangup-v2";
    $newNote = 'edited by php';
    $r = $admin->call('EditPhoneCallEvent', ['extension' => $EXT, 'type' => 2, 'id' => $ids[1], 'url' => $newURL, 'note' => $newNote]);
    expect($r->result === 'success', 'Edit result ' . show($r));
    $r = $admin->call('SetPhoneCallEventStatus', ['extension' => $EXT, 'type' => 3, 'id' => $ids[2], 'status' => 0]);
    expect($r->result === 'success' && $r->phoneCallEvent->status === 0, 'SetStatus ' . show($r));
    $e1 = eventOut(events($admin->call('GetPhoneCallEvents', ['extension' => $EXT, 'id' => $ids[1]]))[0]);
    $e2 = eventOut(events($admin->call('GetPhoneCallEvents', ['extension' => $EXT, 'id' => $ids[2]]))[0]);
    $report['edited'] = $e1;
    $report['statusSet'] = $e2;
    expect($e1['url'] === $newURL && $e1['note'] === $newNote, 'edit read back ' . show($e1));
    expect($e1['method'] === 1 && $e1['hasSecret'] === true, 'edit kept method/secret ' . show($e1));
    expect($e2['status'] === 0 && $e2['url'] === $adds[2]['url'], 'status read back ' . show($e2));

    // SOAP 1.2: the same WSDL, a read and a fault.
    $admin12 = new Session(getenv('CE_CLIENT_ID'), getenv('CE_CLIENT_SECRET'), SOAP_1_2);
    $g12 = $admin12->call('GetPhoneCallEvents', ['extension' => $EXT]);
    $report['soap12'] = ['total' => $g12->totalResults,
                         'fault' => $admin12->fault('GetPhoneCallEvents', ['extension' => 'abc'])];
    expect($g12->totalResults === 3, 'SOAP 1.2 total ' . show($report['soap12']));
    expect($report['soap12']['fault']['code'] === 254, 'SOAP 1.2 fault ' . show($report['soap12']));

    // 4. Delete by id, by type only, then all.
    $d1 = $admin->call('DelPhoneCallEvent', ['extension' => $EXT, 'id' => $ids[0]]);
    $d2 = $admin->call('DelPhoneCallEvent', ['extension' => $EXT, 'type' => 2]);
    $d3 = $admin->call('DelPhoneCallEvent', ['extension' => $EXT]);
    $report['deleted'] = ['byId' => $d1->deletedId ?? [], 'byType' => $d2->deletedId ?? [], 'all' => $d3->deletedId ?? []];
    expect($d1->result === 'success' && $d2->result === 'success' && $d3->result === 'success', 'Del results');
    expect($report['deleted'] === ['byId' => [$ids[0]], 'byType' => [$ids[1]], 'all' => [$ids[2]]], 'deleted ' . show($report['deleted']));
    $final = $admin->call('GetPhoneCallEvents', ['extension' => $EXT]);
    $report['finalTotal'] = $final->totalResults;
    expect($final->totalResults === 0 && count(events($final)) === 0, 'final ' . show($final));

    // 5. Faults, read through SoapFault.
    $faults = ['extensionInvalid' => $admin->fault('AddPhoneCallEvent', ['extension' => 'abc', 'type' => 0, 'url' => "$HOOK/x"])];
    $scoped = new Session(getenv('CE_SCOPED_CLIENT_ID'), getenv('CE_SCOPED_CLIENT_SECRET'));
    $own = $scoped->call('GetPhoneCallEvents', ['extension' => $EXT]);
    $report['scopedOwnTotal'] = $own->totalResults;
    $faults['outOfScope'] = $scoped->fault('AddPhoneCallEvent', ['extension' => $FOREIGN, 'type' => 0, 'url' => "$HOOK/x"]);
    $faults['badCredentials'] = (new Session(getenv('CE_CLIENT_ID'), 'wrong-secret'))->fault('GetPhoneCallEvents', ['extension' => $EXT]);
    $report['faults'] = $faults;
    foreach (['extensionInvalid' => 254, 'outOfScope' => 103, 'badCredentials' => 100] as $name => $code) {
        $f = $faults[$name];
        expect($f['code'] === $code, "$name fault " . show($f));
        expect(preg_match('/(^|:)Client$/', $f['faultcode']) === 1, "$name faultcode " . show($f));
        expect($f['faultstring'] !== '', "$name faultstring empty");
    }
} catch (SoapFault $f) {
    fail('unexpected SoapFault ' . $f->faultcode . ': ' . $f->faultstring . ' detail ' . show($f->detail ?? null));
}

echo json_encode($report, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
